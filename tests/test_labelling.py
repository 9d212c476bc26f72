"""The labelling use cases on real input: accepting a prompted mask, planning and running a propagation over a
PyAV-encoded video as a job (cancel keeps the frames done), and keyframe marks that undo and survive a project."""

import json

import numpy as np
import pytest

from app.core.annotation import Annotation
from app.core.edits import Edit, MarkFrames, Paint, with_keyframe
from app.core.errors import Cancelled, PromptError, PropagationError
from app.core.keyframes import KEY, PROPAGATED, FrameMarks
from app.core.progress import Progress, run_job
from app.core.project import Project
from app.core.propagation.labelling import (
    AppliedPropagation,
    FrameMask,
    PropagateOptions,
    accept_proposal,
    plan_propagation,
    propagation_job,
)
from app.core.propagation.scores import jaccard
from dvis_models.categories import vipseg_categories
from tests.labelling_media import SIZE, make_square_video
from tests.labelling_media import square_mask as shape_mask

PERSON, SKY = 60, 28
FRAMES = 24


@pytest.fixture
def clip(tmp_path):
    return make_square_video(tmp_path / "clip.mp4", FRAMES)


def maps(annotation) -> np.ndarray:
    return np.stack([annotation.track_map(i) for i in range(annotation.num_frames)])


def propagate(annotation, propagation, track_id: int, clip, seen: list | None = None):
    """Run the job headless as the GUI does: each frame applied as it comes; returns (result, the undo edit)."""
    applied = AppliedPropagation(annotation, track_id)

    def on_item(item) -> None:
        if isinstance(item, FrameMask):
            assert item.edit.frame == item.frame and item.edit.track_id == track_id
            applied.add(item)
        elif seen is not None:
            seen.append(item)

    result = run_job(propagation_job(propagation, track_id, clip, "flow"), on_item)
    return result, applied.finish(propagation.request.keyframe, result.frames)


def accepted(annotation: Annotation, frame: int = 0) -> int:
    edit, track_id = accept_proposal(annotation, frame, shape_mask(frame), PERSON)
    annotation.apply(edit)
    return track_id


def test_accepting_a_proposal_makes_a_new_track_with_that_mask_and_a_keyframe_in_one_undoable_edit():
    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    stored = maps(annotation)
    edit, track_id = accept_proposal(annotation, 3, shape_mask(3), PERSON)
    inverse = annotation.apply(Edit.from_json(edit.to_json()))  # what the project history replays
    assert annotation.tracks[track_id].category_id == PERSON
    assert np.array_equal(annotation.track_map(3) == track_id, shape_mask(3))
    assert annotation.marks.of(track_id) == {3: KEY}
    annotation.apply(inverse)
    assert track_id not in annotation.tracks and annotation.marks.of(track_id) == {}
    assert np.array_equal(maps(annotation), stored)


def test_a_stuff_proposal_goes_into_the_existing_track_of_its_category_and_an_empty_one_is_refused():
    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    sky = annotation.add_track(SKY).id
    _, track_id = accept_proposal(annotation, 0, shape_mask(0), SKY)
    assert track_id == sky
    with pytest.raises(PromptError, match="empty"):
        accept_proposal(annotation, 0, np.zeros((SIZE[1], SIZE[0]), bool), PERSON)


def test_painting_a_track_marks_a_keyframe_and_undo_unmarks_it():
    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    track_id = annotation.add_track(PERSON).id
    inverse = annotation.apply(with_keyframe(Paint(5, track_id, "brush", [[20, 20]], 4), track_id, 5, "brush"))
    assert annotation.marks.frames(track_id, KEY) == [5]
    annotation.apply(inverse)
    assert annotation.marks.of(track_id) == {}
    with pytest.raises(Exception, match="Unknown frame mark"):
        annotation.apply(MarkFrames(track_id, [[1, "guess"]]))


def test_propagation_job_follows_the_square_over_the_video_and_marks_its_frames(clip):
    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    track_id = accepted(annotation)
    stored = maps(annotation)
    propagation = plan_propagation(annotation, track_id, 0, PropagateOptions(stop=12))
    seen: list[Progress] = []
    result, inverse = propagate(annotation, propagation, track_id, clip, seen)
    assert not result.cancelled and result.frames == list(range(1, 12))
    assert [p.done for p in seen] == list(range(12)) and seen[-1].total == 11
    ious = [jaccard(annotation.track_map(i) == track_id, shape_mask(i)) for i in range(1, 12)]
    assert min(ious) > 0.9, ious  # 0.97-1.0 measured
    assert annotation.marks.frames(track_id, PROPAGATED) == list(range(1, 12))
    assert annotation.marks.spans(track_id, PROPAGATED) == [(1, 11)] and annotation.marks.frames(track_id, KEY) == [0]
    annotation.apply(inverse)
    assert np.array_equal(maps(annotation), stored) and annotation.marks.of(track_id) == {0: KEY}


def test_cancelling_the_job_keeps_the_frames_done(clip):
    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    track_id = accepted(annotation)
    propagation = plan_propagation(annotation, track_id, 0, PropagateOptions(stop_at="range_end"))
    job = propagation_job(propagation, track_id, clip,
                          "flow")
    while getattr(next(job), "done", 0) < 5:
        pass
    with pytest.raises(StopIteration) as stopped:
        job.throw(Cancelled)
    result = stopped.value.value
    assert result.cancelled and result.frames == [1, 2, 3, 4, 5]


def test_next_keyframe_only_fills_between_keyframes_and_interpolates_towards_them(clip):
    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    track_id = accepted(annotation, 4)
    annotation.apply(accept_proposal(annotation, 10, shape_mask(10), PERSON, track_id)[0])
    options = PropagateOptions(direction="both", stop_at="next_keyframe")
    propagation = plan_propagation(annotation, track_id, 4, options)
    result, _ = propagate(annotation, propagation, track_id, clip)
    assert result.frames == [5, 6, 7, 8, 9]  # nothing before frame 4: no keyframe there
    assert propagation.total() == 10  # both sides of the span: forward from 4, backward from 10
    assert annotation.marks.of(track_id) == {4: KEY, 10: KEY, **{f: PROPAGATED for f in range(5, 10)}}
    assert min(jaccard(annotation.track_map(f) == track_id, shape_mask(f)) for f in range(5, 10)) > 0.9
    with pytest.raises(PropagationError, match="no pixels"):
        plan_propagation(annotation, track_id, 2, options)


def test_marks_survive_a_project_save_and_open_and_older_projects_open_without_them(tmp_path, clip):
    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    track_id = accepted(annotation)
    annotation.apply(MarkFrames(track_id, [[1, PROPAGATED], [2, PROPAGATED]]))
    Project.create(tmp_path / "project", clip, annotation=annotation).close()
    with Project.open(tmp_path / "project") as project:
        assert project.annotation.marks.of(track_id) == {0: KEY, 1: PROPAGATED, 2: PROPAGATED}
        manifest = json.loads((tmp_path / "project" / "project.json").read_text())
        tracks_file = tmp_path / "project" / manifest["annotation"]["tracks"]
    older = json.loads(tracks_file.read_text())
    del older["marks"]  # what projects saved before keyframes hold
    tracks_file.write_text(json.dumps(older))
    with Project.open(tmp_path / "project") as project:
        assert project.annotation.marks.to_json() == {} and track_id in project.annotation.tracks
    assert FrameMarks.from_json({"3": [[4, "key"]]}).spans(3, KEY) == [(4, 4)]


def test_the_model_engine_runs_as_a_job_with_the_model_it_is_given_and_without_one_says_what_to_do(clip):
    pytest.importorskip("torch")
    from dvis_models import load_checkpoint
    from dvis_models.resources import BUNDLED_CHECKPOINT

    annotation = Annotation(FRAMES, SIZE[1], SIZE[0], vipseg_categories())
    track_id = accepted(annotation)
    options = PropagateOptions(stop=2, stop_at="range_end", engine="model")
    with pytest.raises(PropagationError, match="needs a model"):
        run_job(propagation_job(plan_propagation(annotation, track_id, 0, options), track_id, clip, "model"))
    loaded = []
    job = propagation_job(plan_propagation(annotation, track_id, 0, options), track_id, clip, "model",
                          lambda: loaded.append(1) or load_checkpoint(BUNDLED_CHECKPOINT))
    result = run_job(job)
    assert loaded == [1] and result.frames == [1]
    assert min(jaccard(result.propagation.masks[f], shape_mask(f)) for f in result.frames) > 0.8
