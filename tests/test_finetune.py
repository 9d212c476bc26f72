"""Fine-tuning from a project (app.core.finetune and `dvis finetune`) on a tiny synthetic project, end to end.

The project is a real synthetic VIPSeg video imported as a project (imported tracks are "corrected"), recorded as
run with the bundled model; training runs a few real iterations on the CPU.
"""

from __future__ import annotations

import errno
import hashlib
import re
from pathlib import Path

import pytest
import torch

from app.cli import main
from app.core.errors import Cancelled, UserError
from app.core.finetune import FinetuneError, FinetuneRequest, LossPoint, corrected_frames, finetune, runs_of, split_runs
from app.core.models import ModelLibrary
from app.core.progress import Progress, run_job
from app.core.project import Project
from dvis_models import load_checkpoint
from dvis_models.checkpoint import FORMAT, FORMAT_VERSION
from dvis_models.resources import BUNDLED_CHECKPOINT
from dvis_models.training.training_state import load_state
from tests.finetune_project import FRAMES, dataset, make_project, one_thread, other_base  # noqa: F401 - fixtures


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def request(project: Path, tmp_path: Path, **options) -> FinetuneRequest:
    return FinetuneRequest(project, library=tmp_path / "lib", **{"iterations": 3, "name": "tuned", **options})


def test_held_out_frames_are_whole_runs_from_the_end_or_the_end_of_the_only_run():
    assert runs_of([0, 1, 2, 5, 6, 9]) == [range(0, 3), range(5, 7), range(9, 10)]
    assert split_runs([range(0, 10)]) == ([range(0, 8)], [range(8, 10)])
    assert split_runs([range(0, 10), range(20, 25), range(30, 33)]) == ([range(0, 10)], [range(20, 25), range(30, 33)])
    with pytest.raises(FinetuneError, match="3 corrected frame.*at least 4"):
        split_runs([range(0, 3)])


def test_finetune_installs_a_loadable_model_and_scores_it_before_and_after(dataset, tmp_path):
    project = make_project(dataset, tmp_path / "project")
    before = digest(project)
    items = []
    result = run_job(finetune(request(project, tmp_path)), items.append)

    assert result.name == "tuned" and result.model == "model:tuned" and result.stage == "tracker"
    assert (result.train_frames, result.heldout_frames) == (FRAMES - 2, 2)
    for scores in (result.before, result.after):
        assert 0 <= scores.vpq <= 100
    losses = [item for item in items if isinstance(item, LossPoint)]
    assert [point.iteration for point in losses] == [1, 2, 3] and all(point.loss > 0 for point in losses)
    assert {item.text for item in items if isinstance(item, Progress)} >= {
        "Exporting the corrected frames", "Scoring the starting model on held-out frames", "Training the tracker",
        "Scoring the fine-tuned model on held-out frames"}
    library = ModelLibrary(tmp_path / "lib")
    assert [model.name for model in library.list()] == ["tuned"]
    tuned, bundled = load_checkpoint(library.path("tuned")), load_checkpoint(BUNDLED_CHECKPOINT)
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, bundled.state_dict()[k])]
    assert changed and all(key.startswith("tracker.") for key in changed)  # the segmenter stayed frozen
    assert digest(project) == before  # the project is only read; the work folder is gone


@pytest.mark.parametrize("stage, trained", [("refiner", ("refiner.",)), ("segmenter", ("backbone.", "sem_seg_head."))])
def test_each_stage_trains_only_its_part(dataset, tmp_path, stage, trained):
    project = make_project(dataset, tmp_path / "project")
    result = run_job(finetune(request(project, tmp_path, stage=stage, iterations=1)))
    assert result.stage == stage and result.offline == (stage == "refiner")
    tuned, bundled = load_checkpoint(ModelLibrary(tmp_path / "lib").path("tuned")), load_checkpoint(BUNDLED_CHECKPOINT)
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, bundled.state_dict()[k])]
    assert changed and all(key.startswith(trained) for key in changed)


def test_cancel_checkpoints_and_resume_continues_from_there(dataset, tmp_path):
    project = make_project(dataset, tmp_path / "project")
    job = finetune(request(project, tmp_path, iterations=5))
    for item in job:
        if isinstance(item, LossPoint) and item.iteration == 2:
            break
    with pytest.raises(Cancelled):
        job.throw(Cancelled())
    state = load_state(project / "finetune" / "tuned" / "train" / "last.pth")
    assert state.iteration == 2
    assert ModelLibrary(tmp_path / "lib").list() == []

    with pytest.raises(FinetuneError, match="started before and not finished.*resume it"):
        run_job(finetune(request(project, tmp_path, iterations=5)))
    with pytest.raises(FinetuneError, match="trains the tracker, not the refiner"):
        run_job(finetune(request(project, tmp_path, stage="refiner", resume=True)))

    items = []
    result = run_job(finetune(request(project, tmp_path, iterations=99, resume=True)), items.append)
    assert [item.iteration for item in items if isinstance(item, LossPoint)] == [3, 4, 5]  # the run's own 5
    assert not any(isinstance(i, Progress) and i.text.startswith("Scoring the starting") for i in items)  # kept
    assert result.iterations == 5
    load_checkpoint(ModelLibrary(tmp_path / "lib").path("tuned"))


def test_a_project_without_corrections_says_what_to_do(dataset, tmp_path):
    project = make_project(dataset, tmp_path / "project", corrected=False)
    assert corrected_frames(Project.open(project, read_only=True).annotation) == []
    with pytest.raises(FinetuneError, match="0 corrected frame.*Correct more frames"):
        run_job(finetune(request(project, tmp_path)))
    assert not (project / "finetune").exists()


def test_a_project_without_model_info_says_what_to_do(dataset, tmp_path):
    project = make_project(dataset, tmp_path / "project", model={})
    with pytest.raises(FinetuneError, match="does not record which model.*Run DVIS on it once"):
        run_job(finetune(request(project, tmp_path)))


def test_the_default_name_is_the_project_and_stage_then_numbered():
    project = Path("/somewhere/street")
    library = ModelLibrary()
    assert FinetuneRequest(project, "refiner").model_name() == "street-refiner"
    library.add(BUNDLED_CHECKPOINT, "street-tracker")
    library.add(BUNDLED_CHECKPOINT, "street-tracker-2")
    assert FinetuneRequest(project).model_name() == "street-tracker-3"
    assert FinetuneRequest(project, name="mine").model_name() == "mine"


def test_a_name_clash_is_refused_before_any_work(dataset, tmp_path):
    project = make_project(dataset, tmp_path / "project")
    ModelLibrary(tmp_path / "lib").add(BUNDLED_CHECKPOINT, "tuned")
    with pytest.raises(FinetuneError, match="'tuned' is already installed; choose another name"):
        run_job(finetune(request(project, tmp_path)))
    assert not (project / "finetune").exists()


def test_an_unwritable_work_folder_gives_a_clear_error(dataset, tmp_path):
    project = make_project(dataset, tmp_path / "project")
    (project / "finetune").write_text("in the way")  # the work folder cannot be made
    with pytest.raises(FinetuneError, match="Cannot write the fine-tuning files in .*project folder writable"):
        run_job(finetune(request(project, tmp_path)))


def test_a_full_disk_while_exporting_loses_nothing(dataset, tmp_path, monkeypatch):
    from app.core.vipseg import writer

    project = make_project(dataset, tmp_path / "project")
    before = digest(project)

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writer.atomic, "write_bytes", disk_full)
    with pytest.raises(UserError, match="No space left on device. Check free disk space"):
        run_job(finetune(request(project, tmp_path)))
    monkeypatch.undo()
    assert digest(project) == before and ModelLibrary(tmp_path / "lib").list() == []
    (project / "finetune" / "tuned" / "data").mkdir(parents=True)  # as an export killed midway leaves it
    assert run_job(finetune(request(project, tmp_path))).name == "tuned"  # nothing half-done is in the way


def test_a_full_disk_while_checkpointing_can_be_resumed(dataset, tmp_path, monkeypatch):
    from dvis_models.training import training_state as checkpointing

    project = make_project(dataset, tmp_path / "project")
    save_state = checkpointing.save_state

    def disk_full(state, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpointing, "save_state", disk_full)
    with pytest.raises(FinetuneError, match="No space left on device.*try again \\(with Resume"):
        run_job(finetune(request(project, tmp_path)))
    monkeypatch.setattr(checkpointing, "save_state", save_state)
    result = run_job(finetune(request(project, tmp_path, resume=True)))
    assert result.name == "tuned" and ModelLibrary(tmp_path / "lib").list()[0].name == "tuned"


def test_cli_finetune_prints_progress_and_scores(dataset, tmp_path, capsys):
    project = make_project(dataset, tmp_path / "project")
    assert main(["finetune", str(project), "--iterations", "2", "--name", "cli-tuned"]) == 0
    out = capsys.readouterr().out
    assert "Exporting the corrected frames" in out and "it 2/2  loss" in out
    assert "held-out VPQ (2 frames, online): before" in out
    assert "installed cli-tuned (tracker fine-tuned on 6 frames, 2 iterations)" in out
    assert [model.name for model in ModelLibrary().list()] == ["cli-tuned"]  # the user's library (test data folder)


def test_cli_finetune_errors_are_one_line(dataset, tmp_path, capsys):
    project = make_project(dataset, tmp_path / "project", model={})
    assert main(["finetune", str(project)]) == 1
    assert capsys.readouterr().err.startswith("error: This project does not record which model")
    assert main(["finetune", str(project), "--resume"]) == 1
    assert "no cancelled fine-tune named 'project-tracker'" in capsys.readouterr().err


def backbone_of(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_checkpoint(path).state_dict().items() if k.startswith("backbone.")}


def test_cli_finetune_starts_from_the_base_model_given(dataset, tmp_path, capsys):
    """--base model:NAME trains that model, even when the project itself was run with untrained weights."""
    project = make_project(dataset, tmp_path / "project", model={"model": "preset:bundled_small", "short_edge": 64})
    library = ModelLibrary()  # the user's library (test data folder), where the CLI looks
    library.add(other_base(tmp_path / "other.pth"), "other")
    assert main(["finetune", str(project), "--iterations", "1", "--name", "from-other", "--base", "model:other"]) == 0
    assert "installed from-other" in capsys.readouterr().out
    tuned, other = backbone_of(library.path("from-other")), backbone_of(library.path("other"))
    assert all(torch.equal(tuned[k], other[k]) for k in other)  # the frozen segmenter is the base's
    assert not all(torch.equal(tuned[k], v) for k, v in backbone_of(BUNDLED_CHECKPOINT).items())
    assert "from " + str(library.path("other")) in library.get("from-other").source


def test_a_checkpoint_file_as_base(dataset, tmp_path):
    project = make_project(dataset, tmp_path / "project")
    base = other_base(tmp_path / "other.pth")
    result = run_job(finetune(request(project, tmp_path, iterations=1, base=str(base))))
    tuned = backbone_of(ModelLibrary(tmp_path / "lib").path(result.name))
    assert all(torch.equal(tuned[k], v) for k, v in backbone_of(base).items())


def test_resuming_with_another_base_is_refused(dataset, tmp_path):
    project = make_project(dataset, tmp_path / "project")
    job = finetune(request(project, tmp_path, iterations=5))
    for item in job:
        if isinstance(item, LossPoint):
            break
    with pytest.raises(Cancelled):
        job.throw(Cancelled())
    with pytest.raises(FinetuneError, match="starts from .*dvis_bundled_small.pth, not from .*other.pth; resume it"):
        run_job(finetune(request(project, tmp_path, resume=True, base=str(tmp_path / "other.pth"))))


@pytest.mark.parametrize("base, message", [
    ("preset:r50_vipseg_online", "r50_vipseg_online is an architecture with untrained weights.*Choose a trained base"),
    ("missing.pth", "The base model file missing.pth does not exist; give the path of a checkpoint file"),
    ("model:nothing", "nothing"),
    ("wrong.pth", "Cannot fine-tune the tracker of wrong.pth: .*not a DVIS checkpoint.*Choose another base model"),
    ("partial.pth", "Cannot fine-tune the tracker of partial.pth: .*keys missing from the file: sem_seg_head"),
])
def test_cli_refuses_a_base_that_cannot_be_fine_tuned_before_any_work(dataset, tmp_path, capsys, monkeypatch,
                                                                      base, message):
    project = make_project(dataset, tmp_path / "project")
    monkeypatch.chdir(tmp_path)
    torch.save({"not": "weights"}, tmp_path / "wrong.pth")
    bundled = load_checkpoint(BUNDLED_CHECKPOINT)  # our own format, its segmenter's head left out
    torch.save({"format": FORMAT, "version": FORMAT_VERSION, "config": bundled.config.to_dict(), "state_dict": {
        k: v for k, v in bundled.state_dict().items() if not k.startswith("sem_seg_head.")}}, tmp_path / "partial.pth")
    assert main(["finetune", str(project), "--base", base]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and re.search(message, error, re.S)
    assert not (project / "finetune").exists() and ModelLibrary().list() == []
