import pytest

from app.core.errors import StudioError
from app.core.frame_range import FrameRangeError, parse_frame_range


def test_inclusive_ranges_and_single_frames():
    assert parse_frame_range("3-10", 12) == range(3, 11)
    assert parse_frame_range(" 7 ", 12) == range(7, 8)
    assert parse_frame_range("0-11", 12) == range(0, 12)


@pytest.mark.parametrize("bad, message", [("x", "not a frame range"), ("1-2-3", "not a frame range"),
                                          ("5-3", "outside the video"), ("0-12", "outside the video"),
                                          ("-1", "not a frame range")])
def test_bad_ranges_say_what_is_wrong(bad, message):
    with pytest.raises(FrameRangeError, match=message) as error:
        parse_frame_range(bad, 12)
    assert isinstance(error.value, StudioError)  # the GUI shows it in a dialog, the CLI prints it
