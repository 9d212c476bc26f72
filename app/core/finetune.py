"""Fine-tune a model (by default the one a project was run with) on the project's corrected frames, and install
the result.

The loop the app exists for: correct the masks, then teach the model from the corrections and run the better
model. The job (a generator, see ``app.core.progress``):

1. finds the *corrected* frames: frames holding a track a person vouched for (edited, imported or locked);
   frames that only hold the model's own output would teach the model nothing;
2. holds some of them out (whole runs of frames when there are several, else the end of the run) and exports
   the rest and the held-out frames as a VIPSeg dataset into ``<project>/finetune/<name>/data``;
3. scores the starting model (the base) on the held-out frames (VPQ), trains the chosen stage as DVIS trains it
   (``dvis_models.training``: the tracker by default, with the segmenter frozen), checkpointing regularly and on
   Cancel, so ``resume`` continues from the iteration reached;
4. scores the fine-tuned model on the same held-out frames and adds it to the model library under ``name``.

The project itself is only read (as last saved): nothing a fine-tune does can damage it. The work folder is
removed once the model is in the library.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.annotation import Annotation, Provenance
from app.core.errors import Cancelled, StudioError
from app.core.model_source import MODEL_PREFIX, PRESET_PREFIX, checkpoint_path
from app.core.progress import Job, Progress, run_job
from dvis_models import atomic

if TYPE_CHECKING:
    from dvis_models.training.trainer import TrainConfig

STAGES = ("tracker", "refiner", "segmenter")
WORK_DIR = "finetune"  # under the project folder: <project>/finetune/<name>/
PLAN_FILE = "plan.json"
HELDOUT_SPLIT = "heldout"
HELDOUT_FRACTION = 0.2
MIN_HELDOUT_FRAMES = 2
MIN_TRAIN_FRAMES = 2
LEARNING_RATE = 1e-4  # the official recipe's base lr; short runs start from trained weights
FULL_RECIPE_POINTS = 12544  # points per mask at the official training sizes


class FinetuneError(StudioError):
    """A fine-tune that cannot start or go on (no corrections, no model recorded, a name clash, a full disk)."""


@dataclass(frozen=True)
class FinetuneRequest:
    """What to fine-tune. ``name``: the library name of the result (default ``<project>-<stage>``, then ``-2``,
    ``-3``... once installed, so fine-tuning again after more corrections needs no new name). ``resume``
    continues a cancelled run of that name with its own settings. ``base``: the model to start from, a model source
    (``bundled``, ``model:NAME`` or a checkpoint file; see ``app.core.model_source``); None: the model the project
    was run with. ``library``: the model library folder (default: the user's)."""

    project: Path
    stage: str = "tracker"
    iterations: int = 200
    name: str | None = None
    resume: bool = False
    device: str | None = None
    library: Path | None = None
    base: str | None = None

    def model_name(self) -> str:
        if self.name:
            return self.name
        from app.core.models import ModelLibrary

        base, installed = f"{Path(self.project).name}-{self.stage}", {m.name for m in ModelLibrary(self.library).list()}
        return next(name for name in (base if n == 1 else f"{base}-{n}" for n in itertools.count(1))
                    if name not in installed)


@dataclass(frozen=True)
class LossPoint:
    """One training iteration's total loss, for the live plot; ``seconds_left``: None until a rate is known."""

    iteration: int
    total: int
    loss: float
    seconds_left: float | None


@dataclass(frozen=True)
class Scores:
    """VPQ x 100 (all / things / stuff); None where the held-out frames have no such segments."""

    vpq: float | None
    things: float | None
    stuff: float | None

    @classmethod
    def of(cls, evaluation) -> Scores:
        vpq = evaluation.vpq
        return cls(*(None if math.isnan(value) else 100 * value for value in (vpq.all, vpq.things, vpq.stuff)))


def score_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class FinetuneResult:
    name: str  # the library name
    model: str  # how a run names it: "model:<name>"
    stage: str
    iterations: int
    train_frames: int
    heldout_frames: int
    before: Scores
    after: Scores
    offline: bool  # the mode the scores were taken in (before: online when the starting model has no refiner)


# ----------------------------------------------------------------------------------------- which frames


def corrected_frames(annotation: Annotation) -> list[int]:
    """Frames that hold a track a person vouched for (edited, imported or locked), damaged frames left out."""
    vouched = [t.id for t in annotation.tracks.values() if t.locked or t.provenance != Provenance.MODEL]
    frames: set[int] = set()
    for track_id in vouched:
        frames.update(annotation.presence(track_id).tolist())
    return sorted(frames - annotation.damaged_frames)


def runs_of(frames: list[int]) -> list[range]:
    """Consecutive frames grouped into ranges."""
    runs: list[range] = []
    for frame in frames:
        if runs and runs[-1].stop == frame:
            runs[-1] = range(runs[-1].start, frame + 1)
        else:
            runs.append(range(frame, frame + 1))
    return runs


def split_runs(runs: list[range]) -> tuple[list[range], list[range]]:
    """(training runs, held-out runs): about ``HELDOUT_FRACTION`` of the frames held out, whole runs from the end
    when there are several runs, else the end of the one run."""
    total = sum(len(run) for run in runs)
    wanted = max(MIN_HELDOUT_FRAMES, round(total * HELDOUT_FRACTION))
    if total < wanted + MIN_TRAIN_FRAMES:
        raise FinetuneError(
            f"The project has {total} corrected frame(s); fine-tuning needs at least "
            f"{MIN_HELDOUT_FRAMES + MIN_TRAIN_FRAMES} "
            "(some to train on, some held out to measure the gain). Correct more frames (edit, lock or import tracks), "
            "save the project and try again.")
    train, heldout = list(runs), []
    while len(train) > 1 and sum(len(run) for run in heldout) < wanted:
        heldout.insert(0, train.pop())
    if not heldout:
        run = train.pop()
        cut = run.stop - wanted
        train, heldout = [range(run.start, cut)], [range(cut, run.stop)]
    return train, heldout


# ----------------------------------------------------------------------------------------- the model


def base_checkpoint(info: dict | None, library, base: str | None = None) -> Path:
    """The checkpoint file to start from: the model source ``base`` when given, else the model the project was run
    with (``Project.model``); installed ones from ``library``. Refuses untrained weights and missing files."""
    source = base or (info or {}).get("model")
    if not source:
        raise FinetuneError("This project does not record which model made its masks, so there is nothing to "
                            "fine-tune from. Run DVIS on it once (Model → Run DVIS, or dvis infer), correct the "
                            "masks, save, then fine-tune, or choose the base model to start from.")
    if source.startswith(PRESET_PREFIX):
        preset = source[len(PRESET_PREFIX):]
        raise FinetuneError(f"{preset} is an architecture with untrained weights: there is nothing to fine-tune. "
                            "Choose a trained base model (bundled, an installed model:NAME or a checkpoint file)."
                            if base else
                            f"This project was run with {preset}'s untrained weights; run it with a trained model "
                            "(the bundled one or an installed one), or choose a trained base model, then fine-tune.")
    path = checkpoint_path(source, library)
    if not path.is_file():
        raise FinetuneError(f"The base model file {path} does not exist; give the path of a checkpoint file (or "
                            "bundled, or model:NAME for a model in the library)." if base else
                            f"The project was run with {path}, which no longer exists; put the file back (or add "
                            "that model to the library and run the project with it), or choose another base model, "
                            "then fine-tune.")
    return path


def starting_model(stage: str, base: Path, work: Path):
    """The model the training starts from: ``base``'s weights, checked to fit the ``stage`` (plus a fresh refiner for
    an online model's refiner stage)."""
    from dvis_models import DVISError
    from dvis_models.training import launch

    try:
        return launch.build_initial_model(_options(stage, work, base))
    except DVISError as error:  # not a checkpoint, not DVIS, or lacking the trained parts the stage builds on
        raise FinetuneError(f"Cannot fine-tune the {stage} of {base}: {error}\nChoose another base model.") from None


def _options(stage: str, work: Path, base: Path):
    """``dvis_models.training.launch.TrainOptions`` of a fine-tune: the work folder's data, its ``train`` output."""
    from dvis_models.training import launch

    return launch.TrainOptions(stage=stage, data=work / "data", out=work / "train", init=base)


def training_recipe(stage: str, iterations: int, short_edge: int, max_size: int
                    ) -> tuple[TrainConfig, tuple[int, ...], int]:
    """Settings of a short fine-tune: DVIS's losses, clipping and clip lengths at the resolution the model is run at.

    The points per mask scale with the image area (12544 at the official 480-800 sizes, 2048 at 128); the
    matching uses the model's own outputs from the start (it is already trained); cosine decay with a short warm-up.
    """
    from dvis_models.training.stages import LossConfig
    from dvis_models.training.trainer import TrainConfig

    points = int(min(FULL_RECIPE_POINTS, max(1024, short_edge * short_edge // 8)))
    return TrainConfig(
        stage=stage, max_iter=iterations, lr=LEARNING_RATE, schedule="cosine", warmup_iters=min(10, iterations // 10),
        warmup_factor=0.01, match_switch_iter=0, checkpoint_period=max(10, iterations // 10),
        log_period=max(1, iterations // 100), loss=LossConfig(num_points=points),
    ), (round(short_edge * 7 / 8), short_edge, round(short_edge * 9 / 8)), max_size  # short edges, long-side cap


# ----------------------------------------------------------------------------------------- the job


def finetune(request: FinetuneRequest) -> Job[FinetuneResult]:
    """The fine-tune job: yields `Progress` and `LossPoint`s, returns a `FinetuneResult`, raises `Cancelled`
    (after checkpointing: ``resume`` continues) or `FinetuneError` / `StudioError` with what to do."""
    from app.core.models import ModelLibrary
    from app.core.models.library import NAME_PATTERN

    if request.stage not in STAGES:
        raise FinetuneError(f"Unknown stage {request.stage!r}; choose one of {', '.join(STAGES)}.")
    if request.iterations < 1:
        raise FinetuneError("Fine-tune for at least one iteration.")
    name = request.model_name()
    if not NAME_PATTERN.fullmatch(name):
        raise FinetuneError(f"{name!r} is not a usable model name: use letters, digits and . _ + - (up to 100), "
                            "starting with a letter or digit.")
    library = ModelLibrary(request.library)
    if name in {model.name for model in library.list()}:
        raise FinetuneError(f"A model named {name!r} is already installed; choose another name (or remove it first: "
                            f"dvis models remove {name}).")
    work = Path(request.project) / WORK_DIR / name
    try:
        plan, model = yield from _prepare(request, work, library)
        result = yield from _train_and_score(plan, work, request.device, model)
        yield Progress(0, 1, "Adding the model to the library")
        library.add(work / "train" / "model_final.pth", name,
                    source=f"fine-tuned ({plan['stage']}) from {plan['base']} on {Path(request.project).absolute()}")
        _remove(work)
        yield Progress(1, 1, "Adding the model to the library")
        return FinetuneResult(name=name, model=MODEL_PREFIX + name, **result)
    except OSError as error:
        raise FinetuneError(
            f"Cannot write the fine-tuning files in {work}: {error.strerror or error}. Free some disk space (or make "
            "the project folder writable) and try again (with Resume / --resume once training has started); the "
            "project and the model library are unchanged.") from None


def can_resume(project: Path, name: str) -> bool:
    """Whether a cancelled (or failed) fine-tune named ``name`` waits in the project's work folder."""
    return (Path(project) / WORK_DIR / name / PLAN_FILE).is_file()


def _prepare(request: FinetuneRequest, work: Path, library) -> Job[tuple[dict, object | None]]:
    """Read the project, check it can be fine-tuned, export its corrected frames and write the plan (or read the
    plan of the run being resumed); returns the plan and the starting model (None when resuming)."""
    from app.core.project import Project

    plan_path = work / PLAN_FILE
    if request.resume:
        if not can_resume(request.project, work.name):
            raise FinetuneError(f"There is no cancelled fine-tune named {work.name!r} in {request.project} to resume; "
                                "start a new one.")
        plan = json.loads(plan_path.read_text(encoding="utf-8"))
        if plan["stage"] != request.stage:
            raise FinetuneError(f"The cancelled fine-tune {work.name!r} trains the {plan['stage']}, not the "
                                f"{request.stage}; resume it with that stage, or choose another name.")
        if request.base and str(checkpoint_path(request.base, library)) != plan["base"]:
            raise FinetuneError(f"The cancelled fine-tune {work.name!r} starts from {plan['base']}, not from "
                                f"{request.base}; resume it with that base model, or choose another name.")
        return plan, None
    if can_resume(request.project, work.name):
        raise FinetuneError(f"A fine-tune named {work.name!r} was started before and not finished ({work}); resume "
                            "it, or choose another name.")
    _remove(work)  # what an export killed midway left (no plan yet): no use to anyone
    yield Progress(0, None, "Reading the project")
    with Project.open(request.project, read_only=True) as project:
        base = base_checkpoint(project.model, library, request.base)
        train, heldout = split_runs(runs_of(corrected_frames(project.annotation)))
        model = starting_model(request.stage, base, work)  # a base that cannot be trained is refused before any work
        data = work / "data"
        work.mkdir(parents=True)
        try:
            yield from _export(project, {"train": train, HELDOUT_SPLIT: heldout}, data)
        except BaseException:
            _remove(work)  # an unfinished export is no use to a resumed run
            raise
        info = project.model or {}
    plan = {"stage": request.stage, "iterations": request.iterations, "base": str(base),
            "offline": bool(info.get("offline")) and model.refiner is not None,  # a base may be online only
            "short_edge": info.get("short_edge"),
            "train": [[r.start, r.stop] for r in train], "heldout": [[r.start, r.stop] for r in heldout]}
    atomic.write_json(plan_path, plan)  # last: a plan means the data is complete
    return plan, model


def _remove(work: Path) -> None:
    """Delete a work folder, and the project's fine-tune folder when it was the last one."""
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.parent.rmdir()
    except OSError:  # other fine-tunes are kept there
        pass


def _export(project, splits: dict[str, list[range]], root: Path) -> Job[None]:
    """Each run of frames as one VIPSeg video of its split; a `Progress` per run written."""
    from app.core.vipseg import VideoToWrite, video_id_for, write_videos

    annotation, source = project.annotation, project.video
    prefix = video_id_for(project.video_path)
    categories = {t.id: t.category_id for t in annotation.tracks.values()}
    crowd = frozenset(t.id for t in annotation.tracks.values() if t.crowd)
    total = sum(len(runs) for runs in splits.values())
    done = 0
    for split, runs in splits.items():
        for run in runs:
            yield Progress(done, total, "Exporting the corrected frames")
            video = VideoToWrite(
                f"{prefix}_{run.start:06d}-{run.stop - 1:06d}", len(run), categories,
                lambda i, start=run.start: annotation.track_map(start + i),
                image=lambda i, start=run.start: source.frame(start + i), crowd_tracks=crowd)
            run_job(write_videos([video], root, annotation.categories, split=split))  # a run at a time: Cancel waits
            done += 1
    yield Progress(done, total, "Exporting the corrected frames")


def _train_and_score(plan: dict, work: Path, device: str | None, model=None) -> Job[dict]:
    """Score the starting model (``model``, else built from the plan's base), train (resuming from the last
    checkpoint), score the result; returns the `FinetuneResult` fields other than the name. Scores are taken in
    the mode the project ran in (offline needs a refiner), the refiner stage's result offline."""
    import torch

    from dvis_models import DVISError
    from dvis_models.checkpoint import save_checkpoint
    from dvis_models.training import launch
    from dvis_models.training.data import DatasetClips
    from dvis_models.training.distributed import DistributedContext
    from dvis_models.training.trainer import Trainer

    data, stage, iterations = work / "data", plan["stage"], plan["iterations"]
    try:
        options = _options(stage, work, Path(plan["base"]))
        if model is None:
            model = starting_model(stage, options.init, work)
        if "before" not in plan:
            before = yield from _score(model, data, plan["offline"], plan, device,
                                       "Scoring the starting model on held-out frames")
            plan = {**plan, "before": asdict(before)}
            atomic.write_json(work / PLAN_FILE, plan)
        config = model.config
        options.train, options.short_edges, options.max_size = training_recipe(
            stage, iterations, plan["short_edge"] or config.test_short_edge, config.test_max_size)
        dataset = launch.build_dataset(options, model, world_size=1)
        clips = DatasetClips(dataset, 1, config.pixel_mean, config.pixel_std, config.size_divisibility)
        context = DistributedContext(0, 1, 0, torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
        trainer = Trainer(model, options.train, clips, options.out, context, save_checkpoint, log=lambda line: None)
        trainer.resume()
        yield from _train(trainer, iterations)
        offline = plan["offline"] or stage == "refiner"
        after = yield from _score(trainer.stage.model, data, offline, plan, device,
                                  "Scoring the fine-tuned model on held-out frames")
    except DVISError as error:  # a dataset or checkpoint the training code cannot use: its message says why
        raise FinetuneError(f"Fine-tuning stopped: {error}") from None
    return {"stage": stage, "iterations": iterations, "offline": offline,
            "train_frames": sum(b - a for a, b in plan["train"]),
            "heldout_frames": sum(b - a for a, b in plan["heldout"]),
            "before": Scores(**plan["before"]), "after": after}


def _train(trainer, iterations: int) -> Job[None]:
    """Drive the trainer one iteration per `LossPoint`; on Cancel save the state first, so resuming continues here."""
    steps = trainer.iterate()
    try:
        for record in steps:
            rate = record["it_per_s"]
            left = (iterations - record["iteration"]) / rate if rate > 0 and math.isfinite(rate) else None
            yield LossPoint(record["iteration"], iterations, record["loss"], left)
            yield Progress(record["iteration"], iterations, f"Training the {trainer.config.stage}")
    except (Cancelled, KeyboardInterrupt):
        steps.close()
        trainer.save()
        raise


def _score(model, data: Path, offline: bool, plan: dict, device: str | None, text: str) -> Job[Scores]:
    """VPQ on the held-out frames; a run shorter than a VPQ window counts as one window (held-out runs can be short)."""
    from app.core.jobs import evaluate_model

    evaluation = yield from evaluate_model(model, data, HELDOUT_SPLIT, offline=offline, device=device,
                                           short_edge=plan["short_edge"], text=text, short_videos_as_one_window=True)
    return Scores.of(evaluation)
