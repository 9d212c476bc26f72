import pytest

from app.core.errors import StudioError
from app.core.frame_range import FrameRangeError, format_frame_ranges, parse_frame_range


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


def test_frame_lists_are_written_as_ranges_the_parser_reads():
    assert format_frame_ranges([9, 3, 4, 5, 5, 12, 13]) == "3-5, 9, 12-13"
    assert format_frame_ranges([]) == ""
    for part in format_frame_ranges([0, 1, 2, 7]).split(", "):
        assert list(parse_frame_range(part, 8)) in ([0, 1, 2], [7])
