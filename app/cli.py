"""The `dvis` command: the same core as the GUI, headless (infer, eval, export, train).

Heavy modules (torch, the model, PyAV) are imported inside the command that needs them, so
``dvis --help`` stays instant. Errors a user can cause print one clear line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from app import __version__
from app.core.errors import StudioError, UserError
from dvis_models.arguments import frame_size


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


# ----- infer ---------------------------------------------------------------------------------------------------

PARTS_DIR = ".dvis_parts"  # per-video JSON fragments: written last, so a fragment marks a complete video
STREAM_CACHE_BYTES = 64 * 2**20


def _add_infer(commands) -> None:
    from app.core.inference import CHUNK_SIZE_HELP
    from app.core.model_source import PRESETS

    parser = commands.add_parser(
        "infer", help="segment and track videos, write VIPSeg folders",
        description="Run DVIS on videos (files or image folders) and write one VIPSeg folder for all of them. "
                    "Videos already complete in --out are skipped, so an interrupted run can simply be restarted. "
                    "Under torchrun the videos are shared out over the processes (rank / world size). "
                    "The options are those of the app's Run dialog.",
    )
    parser.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="video files or image folders")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--checkpoint", type=Path, metavar="FILE", help="model weights (default: the bundled model)")
    weights.add_argument("--model", metavar="NAME",
                         help="an installed model (see 'dvis models list'), or a model as the app names it: "
                              "bundled, preset:NAME, model:NAME")
    weights.add_argument("--preset", choices=PRESETS, metavar="NAME",
                         help=f"an architecture with fresh (untrained) weights, for testing: {', '.join(PRESETS)}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--offline", action="store_true", help="use the temporal refiner (whole-video, best quality)")
    mode.add_argument("--online", action="store_true", help="tracker only (streaming)")
    parser.add_argument("--short-edge", type=_positive_int, metavar="PIXELS",
                        help="resize frames to this short edge, e.g. 360 for speed (default: the model's own, 720 "
                             "for DVIS); the long edge keeps DVIS's 720:1333 cap")
    parser.add_argument("--start", type=int, default=0, metavar="FRAME", help="first frame to segment (0-based)")
    parser.add_argument("--stop", type=_positive_int, metavar="FRAME",
                        help="segment up to this frame, exclusive (default: the end)")
    parser.add_argument("--score-threshold", type=float, metavar="SCORE",
                        help="minimum object score, 0..1 (default: the model's own, 0.8 for DVIS)")
    parser.add_argument("--chunk-size", type=_positive_int, metavar="FRAMES",
                        help="(default 16) " + CHUNK_SIZE_HELP.replace("%", "%%"))  # argparse formats help with %
    parser.add_argument("--format", choices=("vipseg", "pred"), default="vipseg",
                        help="vipseg: images + panomasks + JSON (a dataset); "
                             "pred: pred.json + pan_pred/ (for dvis eval)")
    parser.add_argument("--split", default="val", help="split name of the vipseg JSON (default val)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--threads", type=_positive_int, help="CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--fast", action="store_true",
                        help="faster CPU inference (int8 linears, channels_last), slightly off the official outputs")
    parser.set_defaults(handler=_infer)


def _print_progress(video_id: str, done: int, total: int | None) -> None:
    step = max(1, (total or 100) // 10)
    if done == total or done % step == 0:
        print(f"  {video_id}: {done}/{total if total else '?'} frames", flush=True)


class _PhasePrinter:
    """Prints a run's progress: each phase when it starts, then every tenth of it (or 100 frames)."""

    def __init__(self, video_id: str) -> None:
        self.video_id = video_id
        self._printed: dict[str, int] = {}  # phase -> last tenth printed

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        from dvis_models.pipeline import progress_text

        tenth = done * 10 // total if total else done // 100
        if tenth > self._printed.get(phase, -1):
            print(f"  {self.video_id}: {progress_text(phase, done, total)}", flush=True)
            self._printed[phase] = tenth


def _frames(args: argparse.Namespace, path: Path, num_frames: int) -> range:
    """The frames --start / --stop choose of a video (--stop past the end: to the end)."""
    stop = num_frames if args.stop is None else min(args.stop, num_frames)
    if not 0 <= args.start < stop:
        raise StudioError(f"{path} has frames 0-{num_frames - 1}; --start {args.start}"
                          f"{f' --stop {args.stop}' if args.stop is not None else ''} chooses none of them.")
    return range(args.start, stop)


def _infer(args: argparse.Namespace) -> int:
    import shutil

    from app.core.jobs import merge_parts, write_results
    from app.core.model_source import build_segmenter, load_model, set_threads, source_for
    from app.core.progress import run_job
    from app.core.video import VideoSource
    from app.core.vipseg import DatasetLayout, check_categories, video_id_for
    from dvis_models import atomic
    from dvis_models.categories import CategoryTable
    from dvis_models.training.distributed import shard

    ids = [video_id_for(path) for path in args.videos]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise StudioError(f"Several inputs are named {duplicates}; output folders are named after the video, "
                           "so rename or infer them in separate runs.")
    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    parts = args.out / PARTS_DIR
    todo = [(i, p) for i, p in shard(list(zip(ids, args.videos)), rank, world_size)
            if not (parts / f"{i}.json").exists()]
    skipped = len(shard(ids, rank, world_size)) - len(todo)
    if skipped:
        print(f"skipping {skipped} video(s) already complete in {args.out}")
    predictions = args.format == "pred"
    if todo:
        set_threads(args.threads)
        source = source_for(args.model, args.preset, args.checkpoint)
        model = load_model(source)
        # Offline mask features beyond the memory budget are spilled next to the output (a disk, unlike a tmpfs /tmp).
        segmenter = build_segmenter(model, device=args.device,
                                    offline=True if args.offline else False if args.online else None,
                                    short_edge=args.short_edge, chunk_size=args.chunk_size,
                                    score_threshold=args.score_threshold, fast=args.fast, spill_dir=parts)
        categories = CategoryTable.from_json(model.config.categories, source=source)
        if not predictions:  # a folder of another table is refused before the model runs
            layout = DatasetLayout(args.out)
            check_categories(layout, layout.gt_json(args.split), categories)
        parts.mkdir(parents=True, exist_ok=True)
        print(f"model {model.config.name} ({'offline' if segmenter.offline else 'online'}) on {segmenter.device}"
              f"{' in fast mode' if segmenter.fast else ''}, frames resized to short edge {segmenter.short_edge} "
              f"(long edge at most {segmenter.max_size})")
    damaged: list[str] = []
    for number, (video_id, path) in enumerate(todo, 1):
        print(f"[{number}/{len(todo)}] {path}", flush=True)
        staging = parts / f"{video_id}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        # Frames are read once, in order (by the pipeline and by the writer): a large frame cache would only hold
        # memory.
        with VideoSource.open(path, cache_bytes=STREAM_CACHE_BYTES) as video:
            frames = _frames(args, path, video.num_frames)
            results = segmenter.run((frame for _, frame in video.iter_frames(frames.start, frames.stop)),
                                    num_frames=len(frames), progress=_PhasePrinter(video_id))
            written = run_job(write_results(results, video, frames, video_id, staging, categories, args.split,
                                            predictions))
            if video.damaged_frames:
                damaged.append(video_id)
                _warn_damaged(path, video.damaged_frames, video.num_frames)
        for folder in ("images", "panomasks", "panomasksRGB", "pan_pred"):
            produced = staging / folder / video_id
            if produced.is_dir():
                target = args.out / folder / video_id
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(target, ignore_errors=True)
                os.replace(produced, target)
        os.replace(written.json_path, parts / f"{video_id}.json")  # the video's mark of completion
        atomic.fsync_dir(parts)
        shutil.rmtree(staging, ignore_errors=True)
    merged = merge_parts(args.out, [parts / f"{video_id}.json" for video_id in ids], args.split, predictions)
    print(f"wrote {merged.summary()}" if merged is not None
          else "some videos are still running in other processes; the last one writes the JSON")
    if damaged:
        print(f"warning: {len(damaged)} video(s) had undecodable frames, segmented from substitutes: "
              f"{', '.join(damaged)} (see above)", file=sys.stderr)
    return 0


def _warn_damaged(path: Path, frames: list[int], num_frames: int) -> None:
    """Say which frames of a partly undecodable video were substituted: the results for them are not real."""
    from app.core.frame_range import format_frame_ranges

    print(f"warning: {path}: {len(frames)} of {num_frames} frames could not be decoded (frames "
          f"{format_frame_ranges(frames)}, 0-based); each was replaced by the last good frame before it "
          "(black if none) and segmented as such. Re-encode or repair the file for real results there.",
          file=sys.stderr, flush=True)


# ----- eval ----------------------------------------------------------------------------------------------------

def _add_eval(commands) -> None:
    parser = commands.add_parser(
        "eval", help="compute VPQ / STQ of predictions against ground truth",
        description="VPQ (windows 1, 2, 4, 6, 8 frames) and STQ of a prediction folder (pred.json + pan_pred/, "
                    "or a VIPSeg folder written by dvis infer) against a VIPSeg ground-truth folder.",
    )
    parser.add_argument("pred", type=Path, help="prediction folder")
    parser.add_argument("gt", type=Path, help="ground-truth VIPSeg folder")
    parser.add_argument("--split", help="ground-truth split (default: the only panoptic_gt_VIPSeg_*.json)")
    parser.set_defaults(handler=_eval)


def _eval(args: argparse.Namespace) -> int:
    from app.core.metrics import evaluate_folders

    print(format_evaluation(evaluate_folders(args.gt, args.pred, args.split)))
    return 0


def format_evaluation(evaluation) -> str:
    """The evaluators' numbers (x 100) as a small table."""
    vpq, stq = evaluation.vpq, evaluation.stq
    lines = [f"{'window':>8} {'VPQ':>7} {'things':>7} {'stuff':>7}"]
    for window in vpq.windows:
        lines.append(f"{window.nframes:>6}fr {100 * window.all.pq:7.2f} {100 * window.things.pq:7.2f} "
                     f"{100 * window.stuff.pq:7.2f}")
    lines.append(f"{'mean':>8} {100 * vpq.all:7.2f} {100 * vpq.things:7.2f} {100 * vpq.stuff:7.2f}")
    lines.append(f"STQ {100 * stq.stq:.2f}  (AQ {100 * stq.aq:.2f}, SQ {100 * stq.sq:.2f})")
    return "\n".join(lines)


def _add_eval_bundled(commands) -> None:
    parser = commands.add_parser(
        "eval-bundled", help="score the bundled model on held-out synthetic videos",
        description="Generate the held-out synthetic split (the generator's 'val' videos, never used for training) "
                    "and print the bundled model's VPQ / STQ online and offline. Deterministic: same numbers every "
                    "run.",
    )
    parser.add_argument("--checkpoint", type=Path, help="model weights (default: the bundled model)")
    parser.add_argument("--videos", type=_positive_int, default=8, help="number of held-out videos (default 8)")
    parser.add_argument("--frames", type=_positive_int, default=24, help="frames per video (default 24)")
    parser.add_argument("--size", type=frame_size, default=(128, 160), help="frame size HxW (default 128x160)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0, as in the README)")
    parser.add_argument("--device", help="cpu, cuda ... (default: cuda when available)")
    parser.add_argument("--fast", action="store_true", help="score the fast CPU mode (as dvis infer --fast)")
    parser.set_defaults(handler=_eval_bundled)


def _eval_bundled(args: argparse.Namespace) -> int:
    import tempfile

    from app.core.jobs import evaluate_model
    from app.core.model_source import load_model, source_for
    from app.core.progress import run_job
    from dvis_models.data.synthetic import generate_dataset

    if min(args.size) < 16:
        raise StudioError(f"--size {args.size[0]}x{args.size[1]} is too small; synthetic frames need at least 16x16 "
                          "pixels.")
    model = load_model(source_for(checkpoint=args.checkpoint))
    with tempfile.TemporaryDirectory(prefix="dvis-heldout-") as root:
        generate_dataset(Path(root), args.videos, args.frames, args.size, args.seed, split="val")
        modes = [("online", False)] + ([("offline", True)] if model.refiner is not None else [])
        for name, offline in modes:
            evaluation = run_job(evaluate_model(model, Path(root), "val", offline=offline, device=args.device,
                                                fast=args.fast))
            print(f"{model.config.name} {name}{' fast' if args.fast else ''}, {args.videos} held-out synthetic videos "
                  f"x {args.frames} frames:")
            print(format_evaluation(evaluation))
    return 0


# ----- export --------------------------------------------------------------------------------------------------

def _add_export(commands) -> None:
    parser = commands.add_parser(
        "export", help="export a project to VIPSeg or editor formats",
        description="Export a DVIS Studio project: a VIPSeg dataset (for fine-tuning with dvis train), per-object "
                    "mask PNGs, RGBA cut-outs, an alpha-matte video or an overlay video.",
    )
    parser.add_argument("project", type=Path, help="project folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (or video file for alpha/overlay)")
    parser.add_argument("--format", choices=("vipseg", "masks", "cutouts", "alpha", "overlay"), default="vipseg")
    parser.add_argument("--tracks", type=_int_list, help="track ids (default: all tracks)")
    parser.add_argument("--frames", help="frame range FIRST-LAST, 0-based inclusive (default: all frames)")
    parser.add_argument("--split", default="train", help="split name of the VIPSeg JSON (default train)")
    parser.add_argument("--resolution", type=int, help="VIPSeg frame height, e.g. 720 (default: the video's)")
    parser.add_argument("--all-frames", action="store_true",
                        help="masks/cutouts: also write empty images for frames where a track is absent "
                             "(default: only frames where it is present)")
    parser.set_defaults(handler=_export)


EXPORT_ATTEMPTS = 3


def _export(args: argparse.Namespace) -> int:
    from app.core.project import ProjectChangedError

    if args.format == "vipseg" and (args.tracks or args.frames):
        raise StudioError("A VIPSeg export holds whole videos with every object; --tracks and --frames apply to the "
                          "masks, cutouts, alpha and overlay formats.")
    for attempt in range(1, EXPORT_ATTEMPTS + 1):
        try:
            return _export_once(args)
        except ProjectChangedError:  # the app saved the project while we read it: read the new state
            if attempt == EXPORT_ATTEMPTS:
                raise StudioError(f"{args.project} was saved by DVIS Studio {EXPORT_ATTEMPTS} times while it was being "
                                  "exported; export again when the app is idle (nothing is damaged).") from None
            print(f"{args.project} was saved meanwhile; exporting again", file=sys.stderr)
    raise AssertionError("unreachable")


def _export_once(args: argparse.Namespace) -> int:
    from app.core import exports
    from app.core.frame_range import parse_frame_range
    from app.core.progress import Progress, run_job
    from app.core.project import Project
    from app.core.vipseg import export_vipseg, video_id_for

    # read-only: no lock, so a project open in the GUI exports as last saved; project.video checks the video fits
    with Project.open(args.project, read_only=True) as project:
        annotation, source = project.annotation, project.video
        tracks = list(args.tracks) if args.tracks else sorted(annotation.tracks)
        unknown = sorted(set(tracks) - set(annotation.tracks))
        if unknown:
            raise StudioError(f"{args.project} has no track {unknown}; its tracks are {sorted(annotation.tracks)}.")
        frames = (range(annotation.num_frames) if args.frames is None
                  else parse_frame_range(args.frames, annotation.num_frames))
        def progress(report: Progress) -> None:
            _print_progress(args.format, report.done, report.total)

        if args.format == "vipseg":
            written = run_job(export_vipseg([(video_id_for(project.video_path), annotation, source)], args.out,
                                            split=args.split, resolution=args.resolution), progress)
            summary = f"wrote {written.summary()}"
        else:
            per_track = {"class_names": exports.class_names(annotation), "all_frames": args.all_frames}
            if args.format == "masks":
                job = exports.export_track_masks(annotation, tracks, frames, args.out, stems=source.stems, **per_track)
            elif args.format == "cutouts":
                job = exports.export_cutouts(annotation, source, tracks, frames, args.out, **per_track)
            elif args.format == "alpha":
                job = exports.export_alpha_video(annotation, source, tracks, frames, args.out)
            else:
                job = exports.export_overlay_video(annotation, source, tracks, frames, args.out)
            result = run_job(job, progress)
            summary = f"wrote {len(result.paths)} file(s) for {result.frames} frames under {args.out}"
        for problem in project.problems:  # damaged frames were left out: say which, and what to do
            print(f"warning: {problem}", file=sys.stderr)
    print(summary)
    return 0


# ----- project -------------------------------------------------------------------------------------------------

PROBLEMS_FOUND = 2  # exit status of `dvis project check|repair` when problems are (still) there; 1 is "cannot open"


def _add_project(commands) -> None:
    parser = commands.add_parser(
        "project", help="check or repair a project folder",
        description="check: read every file of a project and list what is damaged (exit 0 healthy, 2 problems found, "
                    "1 cannot be opened at all). repair: keep what is intact, clear frames whose masks are lost, "
                    "rewrite a damaged manifest from the previous save, start a lost edit history afresh, and save "
                    "(exit 0 when healthy afterwards, 2 when problems remain that need you, such as a moved video).",
    )
    parser.add_argument("action", choices=("check", "repair"))
    parser.add_argument("project", type=Path, help="project folder")
    parser.set_defaults(handler=_project)


def _project(args: argparse.Namespace) -> int:
    from app.core.project_check import check_project, repair_project

    if args.action == "check":
        problems = check_project(args.project)
        for problem in problems:
            print(f"problem: {problem}")
        print(f"{args.project}: {'healthy' if not problems else f'{len(problems)} problem(s)'}")
        return PROBLEMS_FOUND if problems else 0
    found, left = repair_project(args.project)
    for problem in found:
        print(f"{'left' if problem in left else 'repaired'}: {problem}")
    for problem in left:
        if problem not in found:
            print(f"left: {problem}")
    print(f"{args.project}: {'healthy' if not left else f'{len(left)} problem(s) left'}")
    return PROBLEMS_FOUND if left else 0


# ----- train ---------------------------------------------------------------------------------------------------

def _add_train(commands) -> None:
    parser = commands.add_parser(
        "train", help="train or fine-tune DVIS stages",
        description="Train one DVIS stage on a VIPSeg-format dataset (run it under torchrun for several GPUs or "
                    "nodes: one clip per process). Stages chain: segmenter -> tracker (--init the segmenter's "
                    "model_final.pth) -> refiner (--init the tracker's). Re-running with the same --out resumes.",
    )
    parser.add_argument("stage", choices=("segmenter", "tracker", "refiner"))
    parser.add_argument("--data", type=Path, required=True, help="VIPSeg-format dataset root")
    parser.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, metrics, model_final.pth)")
    parser.add_argument("--split", default="train", help="dataset split (panoptic_gt_VIPSeg_<split>.json)")
    parser.add_argument("--preset", help="model architecture (default: --init's own, else bundled_small)")
    parser.add_argument("--init", type=Path, help="starting weights: previous stage's model_final.pth, an official "
                                                  "DVIS/MinVIS .pth, or Mask2Former .pkl (segmenter)")
    parser.add_argument("--iters", type=int, default=20000, help="number of iterations (default 20000)")
    parser.add_argument("--lr", type=float, default=1e-4, help="base learning rate (default 1e-4)")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--backbone-lr-mult", type=float, default=0.1, help="backbone lr multiplier (default 0.1)")
    parser.add_argument("--clip-norm", type=float, default=0.01, help="full-model gradient L2 clip (default 0.01)")
    parser.add_argument("--schedule", choices=("multistep", "cosine"), default="multistep")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up iterations (default 10)")
    parser.add_argument("--warmup-factor", type=float, default=1.0, help="lr factor at iteration 0 (default 1.0)")
    parser.add_argument("--milestones", type=_int_list, help="multistep decay iterations (default 70%% of --iters)")
    parser.add_argument("--frames", type=int, help="frames per clip (default: 1 segmenter, 5 tracker, 21 refiner)")
    parser.add_argument("--short-edges", type=_int_list, help="training short sides (default 480,512,...,800)")
    parser.add_argument("--max-size", type=int, help="training long-side cap (default 1333)")
    parser.add_argument("--crop", type=frame_size, help="random crop HxW after resizing (official refiner: 608x608)")
    parser.add_argument("--num-points", type=int, default=12544, help="points per mask for matching and losses")
    parser.add_argument("--match-switch", type=int, help="iteration at which tracker/refiner matching switches to "
                                                         "their own outputs (default: half of --iters)")
    parser.add_argument("--checkpoint-every", type=_positive_int, default=1000)
    parser.add_argument("--log-every", type=_positive_int, default=20)
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument("--data-seed", type=int, default=0, help="clip sampling / augmentation seed")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--threads", type=int, help="CPU threads per process (1 is fastest on a busy machine)")
    parser.add_argument("--no-amp", action="store_true", help="train in float32 on CUDA")
    parser.add_argument("--fresh", action="store_true", help="refuse to resume an existing run in --out")
    parser.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    import torch

    from dvis_models.data.transforms import OFFICIAL_MAX_SIZE, OFFICIAL_SHORT_EDGES
    from dvis_models.training import launch
    from dvis_models.training.stages import LossConfig
    from dvis_models.training.trainer import TrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)

    milestones = args.milestones if args.milestones is not None else (int(args.iters * 0.7),)
    config = TrainConfig(
        stage=args.stage, max_iter=args.iters, lr=args.lr, weight_decay=args.weight_decay,
        backbone_lr_multiplier=args.backbone_lr_mult, clip_norm=args.clip_norm, schedule=args.schedule,
        warmup_iters=args.warmup, warmup_factor=args.warmup_factor, milestones=milestones,
        match_switch_iter=args.match_switch, checkpoint_period=args.checkpoint_every, log_period=args.log_every,
        seed=args.seed, amp=not args.no_amp, loss=LossConfig(num_points=args.num_points),
    )
    options = launch.TrainOptions(
        stage=args.stage, data=args.data, out=args.out, split=args.split, preset=args.preset, init=args.init,
        frames=args.frames, short_edges=args.short_edges or OFFICIAL_SHORT_EDGES,
        max_size=args.max_size or OFFICIAL_MAX_SIZE, crop=args.crop, data_seed=args.data_seed, device=args.device,
        resume=not args.fresh, train=config,
    )
    launch.run(options, log=lambda line: print(line, flush=True))
    return 0


# ----- finetune ------------------------------------------------------------------------------------------------

def _add_finetune(commands) -> None:
    parser = commands.add_parser(
        "finetune", help="fine-tune a project's model on its corrected frames",
        description="Export the project's corrected frames (those holding edited, imported or locked tracks), hold "
                    "some out, train one stage of the model the project was run with (or of --base), install the "
                    "result in the model library and print the VPQ on the held-out frames before and after. Ctrl+C "
                    "checkpoints; --resume continues. Run the project with the result: dvis infer VIDEO --model NAME.",
    )
    parser.add_argument("project", type=Path, help="project folder (read as last saved; never changed)")
    parser.add_argument("--stage", choices=("tracker", "refiner", "segmenter"), default="tracker",
                        help="what to train (default tracker, the segmenter frozen, as DVIS trains it)")
    parser.add_argument("--iterations", type=_positive_int, default=200, help="training iterations (default 200)")
    parser.add_argument("--name", help="library name of the fine-tuned model (default PROJECT-STAGE)")
    parser.add_argument("--base", metavar="MODEL",
                        help="the model to start from: bundled, model:NAME (installed) or a checkpoint file "
                             "(default: the model the project was run with)")
    parser.add_argument("--resume", action="store_true", help="continue the cancelled fine-tune of that name")
    parser.add_argument("--device", help="cpu, cuda ... (default: cuda when available)")
    parser.set_defaults(handler=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    from app.core.finetune import FinetuneRequest, LossPoint, finetune, score_text
    from app.core.progress import Progress, run_job

    request = FinetuneRequest(args.project, args.stage, args.iterations, args.name, args.resume, args.device,
                              base=args.base)
    printed: dict[str, int] = {}  # phase -> last tenth printed

    def report(item) -> None:
        if isinstance(item, LossPoint) and (item.iteration % max(1, item.total // 20) == 0
                                            or item.iteration == item.total):
            left = "?" if item.seconds_left is None else f"{item.seconds_left:.0f} s"
            print(f"  it {item.iteration}/{item.total}  loss {item.loss:.3f}  ETA {left}", flush=True)
        elif isinstance(item, Progress) and not item.text.startswith("Training"):
            tenth = item.done * 10 // item.total if item.total else 0
            if tenth > printed.get(item.text, -1):
                printed[item.text] = tenth
                print(f"{item.text}: {item.done}/{item.total if item.total else '?'}", flush=True)

    try:
        result = run_job(finetune(request), report)
    except KeyboardInterrupt:
        print(f"interrupted; continue with: dvis finetune {args.project} --stage {args.stage} "
              f"--name {request.model_name()} --resume", file=sys.stderr)
        return 130
    mode = "offline" if result.offline else "online"
    before, after = result.before, result.after
    print(f"held-out VPQ ({result.heldout_frames} frames, {mode}): before {score_text(before.vpq)} (things "
          f"{score_text(before.things)}, stuff {score_text(before.stuff)})  after {score_text(after.vpq)} (things "
          f"{score_text(after.things)}, stuff {score_text(after.stuff)})")
    print(f"installed {result.name} ({result.stage} fine-tuned on {result.train_frames} frames, {result.iterations} "
          f"iterations); run it with: dvis infer VIDEO --out DIR --model {result.name}")
    return 0


# ----- models --------------------------------------------------------------------------------------------------

def _add_models(commands) -> None:
    parser = commands.add_parser(
        "models", help="the model library: list, add, download, remove, info",
        description="Installed models live in the user's data folder and are run by name (dvis infer --model NAME). "
                    "'list' shows them and the catalogue of official checkpoints.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="installed models and the catalogue").set_defaults(handler=_models_list)
    add = actions.add_parser("add", help="check a checkpoint file loads and install it")
    add.add_argument("path", type=Path, metavar="PATH")
    add.add_argument("--name", help="name to install it under (default: a catalogue name or the file's name)")
    add.set_defaults(handler=_models_add)
    for action, handler, text in (("download", _models_download, "download a catalogue model and install it"),
                                  ("remove", _models_remove, "delete an installed model"),
                                  ("info", _models_info, "details of an installed or catalogue model")):
        command = actions.add_parser(action, help=text)
        command.add_argument("name", metavar="NAME")
        command.set_defaults(handler=handler)


def _size_text(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:.1f} MB"


def _models_list(args: argparse.Namespace) -> int:
    from app.core.models import ModelLibrary, catalogue_entries

    library = ModelLibrary()
    installed = library.list()
    print(f"installed in {library.folder}:" if installed else f"no models installed yet ({library.folder})")
    for model in installed:
        print(f"  {model.name:32s} {model.preset:22s} {model.family:8s} {_size_text(model.size)}")
    print("catalogue (official VIPSeg checkpoints):")
    for entry in catalogue_entries():
        how = "download" if entry.direct_url else "browser + add"
        runs = "" if entry.supported else "  [not supported by this version]"
        print(f"  {entry.name:32s} VPQ {entry.vpq:4.1f}  {entry.backbone:16s} {entry.mode:7s} {how}{runs}")
    return 0


def _models_add(args: argparse.Namespace) -> int:
    from app.core.models import ModelLibrary

    model = ModelLibrary().add(args.path, args.name)
    print(f"added {model.name}: {model.preset} ({model.mode}), {_size_text(model.size)}; "
          f"run it with: dvis infer VIDEO --out DIR --model {model.name}")
    return 0


def _models_download(args: argparse.Namespace) -> int:
    from app.core.models import ModelLibrary

    last = [0.0]

    def progress(report) -> None:
        import time

        if time.monotonic() - last[0] >= 1 or report.done == report.total:
            last[0] = time.monotonic()
            total = f" of {_size_text(report.total)}" if report.total else ""
            print(f"  {_size_text(report.done)}{total}  {report.speed / 1e6:.1f} MB/s", flush=True)

    model = ModelLibrary().download(args.name, progress=progress)
    print(f"installed {model.name} ({model.preset}); run it with: dvis infer VIDEO --out DIR --model {model.name}")
    return 0


def _models_remove(args: argparse.Namespace) -> int:
    from app.core.models import ModelLibrary

    model = ModelLibrary().remove(args.name)
    print(f"removed {model.name} ({model.file})")
    return 0


def _models_info(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from app.core.errors import ModelLibraryError
    from app.core.models import ModelLibrary, find_entry

    library = ModelLibrary()
    installed = {model.name: model for model in library.list()}
    entry = find_entry(args.name)
    if args.name not in installed and entry is None:
        raise ModelLibraryError(f"No installed or catalogue model is named {args.name!r}; see 'dvis models list'.")
    if args.name in installed:
        print(f"installed: {library.folder / installed[args.name].file}")
        for key, value in asdict(installed[args.name]).items():
            print(f"  {key}: {value}")
    if entry is not None:
        print("catalogue:")
        for key, value in asdict(entry).items():
            print(f"  {key}: {value}")
        if args.name not in installed:
            print(entry.where_to_get() if entry.direct_url is None
                  else f"get it with: dvis models download {entry.name}")
    return 0


# ----- parser / main -------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dvis", description="DVIS Studio command line: video panoptic segmentation with DVIS.")
    parser.add_argument("--version", action="version", version=f"dvis-studio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_infer(commands)
    _add_eval(commands)
    _add_export(commands)
    _add_project(commands)
    _add_eval_bundled(commands)
    _add_train(commands)
    _add_finetune(commands)
    _add_models(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")  # e.g. NaN weights in a checkpoint
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if isinstance(error, UserError):
            print(f"error: {error}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
