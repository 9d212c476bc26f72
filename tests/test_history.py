"""EditHistory without Qt: undo, redo, the clean marker, model runs as one step, what a project logs."""

import numpy as np
import pytest

from app.core.annotation import Annotation, AnnotationError
from app.core.categories import vipseg_categories
from app.core.edits import MergeTracks, Paint, SetTrackLocked
from app.core.history import EditHistory
from app.core.result_merger import ResultMerger
from tests.test_result_merger import CAR, PERSON, result


def filled() -> Annotation:
    """Six 20x40 frames with a person (track 1) and a car (track 2)."""
    annotation = Annotation(6, 20, 40, vipseg_categories())
    merger = ResultMerger(annotation)
    for index in range(6):
        merger.add(result(index, [(7, PERSON, 2, 10), (9, CAR, 20, 30)]))
    return annotation


def maps(annotation: Annotation) -> list[np.ndarray]:
    return [annotation.track_map(i).copy() for i in range(annotation.num_frames)]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def test_undo_and_redo_restore_each_state():
    annotation = filled()
    history = EditHistory(annotation)
    seen = []
    history.changed.connect(lambda: seen.append((history.can_undo, history.can_redo)))
    start = maps(annotation)
    history.do(MergeTracks(2, 1), "Merge 2 into 1")
    merged = maps(annotation)
    history.do(Paint(0, 1, "brush", [[35, 2]], 1), "Brush 1")
    assert (history.undo_text, history.redo_text, history.index, len(history)) == ("Brush 1", "", 2, 2)
    history.undo()
    assert same(maps(annotation), merged) and history.redo_text == "Brush 1"
    history.undo()
    assert same(maps(annotation), start) and not history.can_undo and 2 in annotation.tracks
    history.redo()
    assert same(maps(annotation), merged) and 2 not in annotation.tracks
    assert seen[-1] == (True, True)  # observers heard every move
    history.do(SetTrackLocked(1, True), "Lock 1")  # a new step drops what could be redone
    assert not history.can_redo and len(history) == 2


def test_a_failing_edit_changes_nothing():
    annotation = filled()
    history = EditHistory(annotation)
    history.do(SetTrackLocked(2, True), "Lock 2")
    before, state = maps(annotation), history.state
    with pytest.raises(AnnotationError):
        history.do(MergeTracks(2, 1), "Merge")  # a locked track cannot be merged away
    assert same(maps(annotation), before) and history.state == state and len(history) == 1


def test_undo_past_the_save_point_is_modified_and_redo_back_is_clean():
    history = EditHistory(filled())
    assert not history.modified
    history.do(MergeTracks(2, 1), "Merge")
    assert history.modified
    history.set_clean()  # saved here
    assert not history.modified
    history.undo()
    assert history.modified
    history.redo()
    assert not history.modified
    history.undo()
    history.do(Paint(0, 1, "brush", [[35, 2]], 1), "Brush")  # the saved state cannot be reached any more
    assert history.modified and not history.can_redo
    history.undo()
    assert history.modified


def test_a_save_that_began_before_more_edits_leaves_them_modified():
    history = EditHistory(filled())
    history.do(MergeTracks(2, 1), "Merge")
    saving = history.state  # an autosave snapshots this state, then writes it in the background
    history.do(Paint(0, 1, "brush", [[35, 2]], 1), "Brush")
    history.set_clean(saving)
    assert history.modified
    history.undo()
    assert not history.modified  # back at what the save holds


def test_a_model_run_is_one_undo_step_and_never_logged():
    annotation = Annotation(6, 20, 40, vipseg_categories())
    history = EditHistory(annotation)
    logged = []
    history.applied.connect(lambda edit, inverse, label: logged.append(label))
    empty = maps(annotation)
    merger = ResultMerger(annotation)
    for index in range(3):
        merger.add(result(index, [(7, PERSON, 2, 10)]))
        assert history.modified  # each streamed frame is unsaved work before the run ends
    history.set_clean()  # an autosave after the last frame
    merger.add(result(3, [(7, PERSON, 2, 10)]))
    assert history.modified  # ...and a frame after that one is not saved
    history.set_clean()
    history.push_applied(merger.undo_edit(), "Run DVIS on frames 0-3")
    assert not history.modified and history.undo_text == "Run DVIS on frames 0-3"  # the save holds the whole run
    ran = maps(annotation)
    history.undo()
    assert same(maps(annotation), empty) and not annotation.tracks and history.modified
    history.redo()
    assert same(maps(annotation), ran) and not history.modified
    history.do(SetTrackLocked(1, True), "Lock 1")
    history.undo()
    assert logged == ["Lock 1", "Undo Lock 1"]


def test_a_project_logs_what_the_history_applies(tmp_path):
    from app.core.project import Project
    from tests.test_project import logged

    annotation = filled()
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 100)  # only fingerprinted, never decoded here
    project = Project.create(tmp_path / "p", tmp_path / "clip.mp4", annotation=annotation)
    history = EditHistory(annotation)
    history.applied.connect(project.record)
    history.do(MergeTracks(2, 1), "Merge 2 into 1")
    history.undo()
    history.redo()
    project.save()
    project.close()
    with Project.open(tmp_path / "p") as reopened:
        labels = [entry["label"] for entry in logged(reopened)]
        assert labels == ["Merge 2 into 1", "Undo Merge 2 into 1", "Merge 2 into 1"]
        assert 2 not in reopened.annotation.tracks


def test_recovered_work_is_modified_until_saved():
    history = EditHistory(filled())
    history.mark_modified()
    assert history.modified and not history.can_undo
    history.set_clean()
    assert not history.modified
    history.reset(None)
    assert not history.modified and len(history) == 0
