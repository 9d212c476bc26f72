"""GPU readiness checks, one subcommand per section of ``benchmarks/gpu_check.sh`` (each runs in its own process).

    python benchmarks/gpu_check.py env
    python benchmarks/gpu_check.py correctness --frames 6 --height 480 --width 854
    python benchmarks/gpu_check.py bench --preset r50 --frames 24 --height 720 --width 1280
    python benchmarks/gpu_check.py profile --preset r50 --frames 12 --height 720 --width 1280
    python benchmarks/gpu_check.py compile --preset r50 --height 720 --width 1280
    python benchmarks/gpu_check.py summary --out DIR  # DIR/*.json and DIR/tests.xml as one line, also DIR/results.json
    add --device cpu (and small sizes) to run a section without a GPU; --out DIR writes each result as DIR/<key>.json

``correctness`` runs the same seeded random weights (official-structure R50) on the CPU in fp32 and on the device
the way the app does (fp16 autocast on CUDA) and reports how far the logits drift and how well track ids and
masks agree. ``bench`` times whole online and offline runs through ``VideoSegmenter`` (frames/s, peak GPU memory)
and each stage with ``bench_pipeline.stage_times`` (median of 3 after a warm-up at the same size). ``profile`` runs R50
online through torch.profiler: per stage, kernels, device-busy time, launch and blocking calls per frame, and the top
ops of a whole run by self device / CPU time (``OUT/profile_r50_online.txt``). ``compile`` (opt-in, benchmark only)
times the transformer decoder through ``torch.compile`` (CUDA graphs with ``reduce-overhead``) against eager.
``bundled`` scores the bundled (trained) model on the held-out synthetic videos on the CPU in fp32 and on the
device, so a precision change shows as a VPQ change on decisive scores, where random weights' near-ties make ids
differ for no fault of the device. Random weights are enough for timing; thresholds are 0 so post-processing keeps
every slot (its worst case). Every subcommand prints its result as one JSON line last.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import statistics
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_pipeline, run as a script from anywhere
from bench_pipeline import stage_times  # noqa: E402

from dvis_models import VideoSegmenter, build_model, transfer  # noqa: E402
from dvis_models.postprocess import video_panoptic  # noqa: E402
from dvis_models.preprocess import prepare_frames  # noqa: E402
from dvis_models.types import FrameResult  # noqa: E402

RESULTS_FILE = "results.json"  # the summary of all sections
# online runs use the same model, offline=False
PRESETS = {"r50": "r50_vipseg_offline", "swinl": "swinl_vipseg_offline"}


def moving_scene(num_frames: int, height: int, width: int) -> list[np.ndarray]:
    """A textured scene panning sideways: consecutive frames are related, as in a real video."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height, width + 4 * num_frames, 3), dtype=np.uint8)
    return [np.ascontiguousarray(base[:, 4 * t: 4 * t + width]) for t in range(num_frames)]


def emit(result: dict, key: str, out: Path | None) -> None:
    """Print the section's JSON line (last) and keep a copy as ``out/key.json`` for the summary."""
    line = json.dumps({key: result})
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{key}.json").write_text(line + "\n")
    print(line, flush=True)


# ----------------------------------------------------------------------------------------------- env

def environment() -> dict:
    info = {"torch": torch.__version__, "cuda_build": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info.update(device=properties.name, capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                    memory_gb=round(properties.total_memory / 2**30, 1), cudnn=torch.backends.cudnn.version())
    else:
        info["device"] = "cpu"
    info.update(cpu=_cpu_name(), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(),
                load_average=[round(x, 2) for x in os.getloadavg()])  # host-bound stages depend on these
    info["modules_missing"] = [name for name in ("av", "cv2", "scipy", "PIL") if importlib.util.find_spec(name) is None]
    return info


def _cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def summary(out: Path) -> dict:
    """All sections' results in one object: test counts from pytest's JUnit XML, exit codes, the speed aims."""
    result: dict = {}
    for path in sorted(out.glob("*.json")):
        if path.name != RESULTS_FILE:
            result.update(json.loads(path.read_text()))
    result["device"] = result.get("environment", {}).get("device", "unknown")
    junit = out / "tests.xml"
    if junit.exists():
        suite = ElementTree.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
        result["tests"] = {"passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
                           "failed": counts["failures"] + counts["errors"], "skipped": counts["skipped"]}
    else:
        result["tests"] = {"passed": 0, "failed": None, "note": "no tests.xml: the test section did not finish"}
    result["section_exit_codes"] = {path.stem: int(path.read_text() or -1) for path in sorted(out.glob("*.rc"))}
    aims = {"r50_online_720p": 20.0, "swinl_online_720p": 8.0}  # frames/s on one H100, end to end
    result["aims_met"] = {f"{key} >= {fps:g} fps": result[key]["fps"] >= fps
                          for key, fps in aims.items() if key in result}
    return result


# --------------------------------------------------------------------------------------- correctness

@torch.no_grad()
def raw_logits(model, frames: list[np.ndarray], short_edge: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Segmenter, tracker and refiner class logits and tracker mask logits of one window, on the CPU as float32."""
    autocast = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()
    prepared = prepare_frames(frames, short_edge, model.config.test_max_size, device=device)
    model.tracker.reset()
    with autocast:
        segmented = model.segment(prepared.images, with_masks=False)
        tracked = model.tracker(segmented.pred_embds, segmented.mask_features)
        refined = model.refiner(tracked.pred_embds, model.tracker.frame_forward(segmented.pred_embds))
    model.tracker.reset()
    outputs = {"segmenter_logits": segmented.pred_logits, "tracker_logits": tracked.pred_logits,
               "refiner_logits": refined.pred_logits, "tracker_mask_logits": tracked.pred_masks}
    return {name: tensor.float().cpu() for name, tensor in outputs.items()}


def track_agreement(reference: list[FrameResult], other: list[FrameResult]) -> dict:
    """How well two runs' panoptic maps agree, after pairing their track ids by best IoU (Hungarian).

    ``same_ids``: fraction of reference tracks whose partner has the same id number (the app shows ids);
    ``pixel_agreement``: fraction of pixels whose reference id maps to the other run's id there.
    """
    ref_ids = sorted({s.track_id for r in reference for s in r.segments})
    other_ids = sorted({s.track_id for r in other for s in r.segments})
    ref_keys, other_keys = np.array([0] + ref_ids), np.array([0] + other_ids)  # row/column 0: void
    overlap = np.zeros((ref_keys.size, other_keys.size), np.int64)  # pixel counts over the whole clip
    for a, b in zip(reference, other, strict=True):
        rows = np.searchsorted(ref_keys, a.track_map.ravel())
        cols = np.searchsorted(other_keys, b.track_map.ravel())
        np.add.at(overlap, (rows, cols), 1)
    area_ref, area_other = overlap.sum(1, keepdims=True), overlap.sum(0, keepdims=True)
    iou = overlap / np.maximum(area_ref + area_other - overlap, 1)
    rows, cols = linear_sum_assignment(-iou[1:, 1:]) if ref_ids and other_ids else ([], [])
    partner = {ref_ids[r]: other_ids[c] for r, c in zip(rows, cols)}
    track_iou = [float(iou[r + 1, c + 1]) for r, c in zip(rows, cols)] + [0.0] * (len(ref_ids) - len(rows))
    agreeing = overlap[0, 0] + sum(overlap[r + 1, c + 1] for r, c in zip(rows, cols))
    ref_category = {s.track_id: s.category_id for r in reference for s in r.segments}
    other_category = {s.track_id: s.category_id for r in other for s in r.segments}
    return {
        "tracks_cpu": len(ref_ids), "tracks_device": len(other_ids),
        "same_ids": round(sum(partner.get(i) == i for i in ref_ids) / max(len(ref_ids), 1), 4),
        "same_category": round(sum(other_category.get(partner.get(i)) == ref_category[i] for i in ref_ids)
                               / max(len(ref_ids), 1), 4),
        "mean_track_iou": round(float(np.mean(track_iou)) if track_iou else 1.0, 4),
        "min_track_iou": round(float(np.min(track_iou)) if track_iou else 1.0, 4),
        "pixel_agreement": round(float(agreeing / overlap.sum()), 5),
        "identical_maps": all(np.array_equal(a.track_map, b.track_map) for a, b in zip(reference, other)),
    }


def correctness(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    cpu_model = build_model("r50_vipseg_offline")
    cpu, device = torch.device("cpu"), torch.device(args.device)
    device_model = copy.deepcopy(cpu_model).to(device)  # two copies of the same weights, one per device
    frames = moving_scene(args.frames, args.height, args.width)
    reference = raw_logits(cpu_model, frames, args.height, cpu)
    tested = raw_logits(device_model, frames, args.height, device)
    result: dict = {"preset": "r50_vipseg_offline (random weights, seed 0)", "frames": args.frames,
                    "size": f"{args.width}x{args.height}",
                    "device_precision": "fp16 autocast" if device.type == "cuda" else "fp32",
                    "max_abs_drift": {name: round(float((tested[name] - value).abs().max()), 5)
                                      for name, value in reference.items()},
                    "logit_scale": {name: round(float(value.abs().max()), 3) for name, value in reference.items()}}
    options = dict(short_edge=args.height, object_mask_threshold=0.0, overlap_threshold=0.0)
    for mode, offline in (("online", False), ("offline", True)):
        runs = [list(VideoSegmenter(model, device=where, offline=offline, **options).run(frames))
                for model, where in ((cpu_model, cpu), (device_model, device))]
        result[mode] = track_agreement(*runs)
        print(f"{mode}: {result[mode]}", flush=True)
    print(f"max |logit drift| device vs CPU fp32: {result['max_abs_drift']} (scale {result['logit_scale']})",
          flush=True)
    return result


def bundled(args: argparse.Namespace) -> dict:
    """VPQ / STQ of the bundled model on the held-out synthetic split: CPU fp32 against the device as the app runs
    it."""
    import tempfile

    from app.core.jobs import evaluate_model
    from app.core.progress import run_job
    from dvis_models import load_checkpoint
    from dvis_models.data.synthetic import generate_dataset
    from dvis_models.resources import BUNDLED_CHECKPOINT

    result: dict = {"videos": args.videos, "frames": args.frames}
    with tempfile.TemporaryDirectory(prefix="gpu-check-heldout-") as root:
        generate_dataset(Path(root), args.videos, args.frames, (128, 160), seed=0, split="val")
        for mode, offline in (("online", False), ("offline", True)):
            for label, where in (("cpu_fp32", "cpu"), ("device", args.device)):
                model = load_checkpoint(BUNDLED_CHECKPOINT)  # a fresh copy per device: VideoSegmenter moves it
                evaluation = run_job(evaluate_model(model, Path(root), "val", offline=offline, device=where))
                result.setdefault(mode, {}).update({f"vpq_{label}": round(100 * evaluation.vpq.all, 2),
                                                    f"stq_{label}": round(100 * evaluation.stq.stq, 2)})
            print(f"bundled {mode}: {result[mode]}", flush=True)
    return result


# --------------------------------------------------------------------------------------------- bench

def timed_run(segmenter: VideoSegmenter, frames: list[np.ndarray], device: torch.device) -> tuple[float, int | None]:
    """(frames per second end to end, peak GPU MB or None on the CPU) of one run, its results consumed one by one."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    count = sum(1 for _ in segmenter.run(iter(frames), num_frames=len(frames)))
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else None
    return count / elapsed, peak


def bench(args: argparse.Namespace, out: Path | None) -> None:
    device = torch.device(args.device)
    torch.manual_seed(0)
    # initialised where it runs: Swin-L is quick to build on a GPU
    model = build_model(PRESETS[args.preset], device=device)
    frames = moving_scene(args.warmup + args.frames, args.height, args.width)
    stage_frames = frames[: args.stage_frames]
    stage_times(model, stage_frames, args.height, device)  # warm-up at the timed size: allocator, kernels
    runs = [stage_times(model, stage_frames, args.height, device) for _ in range(3)]
    stages = {name: round(statistics.median(run[name] for run in runs) * 1000, 2) for name in runs[0]}
    label = f"{args.height}p" if args.height in (480, 720, 1080) else f"{args.width}x{args.height}"
    for mode, offline in (("online", False), ("offline", True)):
        segmenter = VideoSegmenter(model, device=device, offline=offline, short_edge=args.height,
                                   object_mask_threshold=0.0, overlap_threshold=0.0)
        timed_run(segmenter, frames[: args.warmup], device)
        fps, peak = timed_run(segmenter, frames[args.warmup:], device)
        mode_stages = {name: ms for name, ms in stages.items() if offline or name != "refiner"}
        result = {"fps": round(fps, 2), "ms_per_frame": round(1000 / fps, 1), "peak_mb": peak,
                  "frames": args.frames, "ms_per_stage": mode_stages,
                  "precision": "fp16 autocast" if device.type == "cuda" else "fp32"}
        print(f"{args.preset} {mode} {label} on {device.type}: {fps:.2f} frames/s, peak {peak} MB; "
              f"stages (ms/frame, {len(stage_frames)}-frame window): {mode_stages}", flush=True)
        emit(result, f"{args.preset}_{mode}_{label}", out)


# ------------------------------------------------------------------------------------------- profile

ONLINE_BATCH = 3  # VideoSegmenter's default segment_batch: the frames one segmenter call sees
_SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")


def _profiled(fn: Callable[[], object], device: torch.device, frames: int) -> tuple[object, dict, object]:
    """Run ``fn`` once under torch.profiler; per frame: wall ms (profiled), device kernels and their busy ms,
    kernel launch calls and blocking runtime calls (syncs: stream/device/event synchronize, blocking memcpy)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    _synchronize(device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        result = fn()
        _synchronize(device)
    wall = time.perf_counter() - start
    events = prof.events()
    on_device = [e for e in events if e.device_type == DeviceType.CUDA]
    launches = [e for e in events if "LaunchKernel" in e.name]
    syncs = len([e for e in events if e.name in _SYNC_CALLS]) - (device.type == "cuda")  # not our own final one
    counts = {"profiled_wall_ms": round(1000 * wall / frames, 2), "kernels": round(len(on_device) / frames, 1),
              "device_busy_ms": round(sum(e.time_range.elapsed_us() for e in on_device) / 1000 / frames, 2),
              "launch_calls": round(len(launches) / frames, 1), "blocking_calls": round(syncs / frames, 2)}
    return result, counts, prof


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _median_wall_ms(fn: Callable[[], object], device: torch.device, frames: int, repeats: int = 3) -> float:
    """Unprofiled wall time per frame of ``fn``, median of ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times) / frames, 2)


@torch.no_grad()
def profile_stages(model, frames: list[np.ndarray], height: int, device: torch.device) -> dict:
    """Each online stage on one segmenter batch, as ``VideoSegmenter`` runs it: unprofiled wall ms per frame
    (median of 3) and one profiled run's kernel, launch and sync counts. The tracker continues a video (its
    matching runs), post-processing works on logits kept on the host, as the pipeline stores them."""
    autocast = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()
    prepared = prepare_frames(frames, height, model.config.test_max_size, device=device)
    n = len(frames)
    head = model.sem_seg_head
    with autocast:
        features = model.backbone(prepared.images)
        mask_features, multi_scale = head.pixel_decoder(features)
        segmented = head.predictor(multi_scale, mask_features, with_masks=False)
        model.tracker.reset()
        model.tracker(segmented.pred_embds, segmented.mask_features)  # the video's first frames

    def tracker():
        with autocast:
            return model.tracker(segmented.pred_embds, segmented.mask_features)

    tracked = tracker()
    storage = torch.float16 if device.type == "cuda" else torch.float32
    kept_cls = tracked.pred_logits.float().cpu().mean(0)
    kept_masks = tracked.pred_masks.to(storage).cpu().transpose(0, 1)

    def to_host():
        copies = [transfer.to_host(tracked.pred_logits.float()), transfer.to_host(tracked.pred_masks.to(storage))]
        transfer.wait_for_device(device)
        return copies

    def postprocess():
        return list(video_panoptic(kept_cls, kept_masks, prepared.padded_size, prepared.resized_size,
                                   prepared.original_size, model.config.num_thing_classes, object_mask_threshold=0.0,
                                   overlap_threshold=0.0, device=device, max_chunk_bytes=3072 * 2**20 // 12))

    def timed_in_autocast(fn):
        def run():
            with autocast:
                return fn()
        return run

    stages = {
        "backbone": timed_in_autocast(lambda: model.backbone(prepared.images)),
        "pixel decoder": timed_in_autocast(lambda: head.pixel_decoder(features)),
        "decoder": timed_in_autocast(lambda: head.predictor(multi_scale, mask_features, with_masks=False)),
        "tracker": tracker,
        "copy to host": to_host,
        "post-processing": postprocess,
    }
    result = {}
    for name, fn in stages.items():
        wall = _median_wall_ms(fn, device, n)
        _, counts, _ = _profiled(fn, device, n)
        result[name] = {"wall_ms": wall, **counts}
        print(f"{name}: {result[name]}", flush=True)
    model.tracker.reset()
    return result


def _table(prof, sort_by: str, rows: int = 30) -> str:
    try:
        return prof.key_averages().table(sort_by=sort_by, row_limit=rows)
    except (AttributeError, KeyError, ValueError) as error:  # older torch names the device columns "cuda"
        return f"(no table sorted by {sort_by}: {error})"


def profile_online(args: argparse.Namespace, out: Path | None) -> dict:
    """R50 online at ``--height``: per-stage counts, then one profiled ``VideoSegmenter`` run whose top ops by self
    device and self CPU time go to ``out/profile_r50_online.txt``."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(PRESETS[args.preset], device=device)
    frames = moving_scene(args.warmup + args.frames, args.height, args.width)
    result = {"preset": args.preset, "size": f"{args.width}x{args.height}", "frames": args.frames,
              "threads": torch.get_num_threads(), "load_average": [round(x, 2) for x in os.getloadavg()],
              "stages_per_frame": profile_stages(model, frames[:ONLINE_BATCH], args.height, device)}
    segmenter = VideoSegmenter(model, device=device, offline=False, short_edge=args.height,
                               object_mask_threshold=0.0, overlap_threshold=0.0)
    timed_run(segmenter, frames[: args.warmup], device)
    fps, _ = timed_run(segmenter, frames[args.warmup:], device)
    _, counts, prof = _profiled(lambda: list(segmenter.run(iter(frames[args.warmup:]))), device, args.frames)
    result["run_per_frame"] = {"unprofiled_fps": round(fps, 2), "unprofiled_ms": round(1000 / fps, 1), **counts}
    print(f"online run, per frame: {result['run_per_frame']}", flush=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        tables = [f"{args.preset} online {result['size']}, {args.frames} frames on {device}\n"]
        if device.type == "cuda":
            tables.append("top ops by self device time\n" + _table(prof, "self_device_time_total"))
        tables.append("top ops by self CPU time\n" + _table(prof, "self_cpu_time_total"))
        (out / f"profile_{args.preset}_online.txt").write_text("\n\n".join(tables))
    return result


def compiled_decoder(args: argparse.Namespace) -> dict:
    """Opt-in: the transformer decoder through ``torch.compile`` (``--compile-mode reduce-overhead`` captures CUDA
    graphs) against eager, on one online segmenter batch: ms per frame and the largest output difference. Only
    this benchmark compiles; the app always runs eager."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(PRESETS[args.preset], device=device)
    frames = moving_scene(ONLINE_BATCH, args.height, args.width)
    autocast = torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else nullcontext()
    prepared = prepare_frames(frames, args.height, model.config.test_max_size, device=device)
    head = model.sem_seg_head
    with torch.no_grad(), autocast:
        mask_features, multi_scale = head.pixel_decoder(model.backbone(prepared.images))
    compiled = torch.compile(head.predictor, mode=args.compile_mode, backend=args.compile_backend, dynamic=False)
    result: dict = {"mode": args.compile_mode, "backend": args.compile_backend}
    outputs = {}
    for name, decoder in (("eager", head.predictor), ("compiled", compiled)):
        def run(decoder=decoder):
            with torch.no_grad(), autocast:
                return decoder(multi_scale, mask_features, with_masks=False)
        start = time.perf_counter()
        outputs[name] = run().pred_embds.float().cpu()  # the first call compiles
        result[f"{name}_first_call_s"] = round(time.perf_counter() - start, 1)
        for _ in range(2):  # reduce-overhead records its CUDA graphs on the first calls after compiling
            run()
        result[f"{name}_ms_per_frame"] = _median_wall_ms(run, device, ONLINE_BATCH, repeats=5)
    result["max_abs_diff"] = float((outputs["compiled"] - outputs["eager"]).abs().max())
    result["speedup"] = round(result["eager_ms_per_frame"] / max(result["compiled_ms_per_frame"], 1e-9), 2)
    print(f"decoder eager vs torch.compile: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section",
                        choices=["env", "correctness", "bundled", "bench", "profile", "compile", "summary"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--preset", choices=list(PRESETS), default="r50")
    parser.add_argument("--frames", type=int, default=24, help="timed (bench) or compared (correctness) frames")
    parser.add_argument("--videos", type=int, default=8, help="bundled: held-out synthetic videos")
    parser.add_argument("--warmup", type=int, default=3, help="bench: frames of an untimed run first")
    parser.add_argument("--stage-frames", type=int, default=6, help="bench: frames of the per-stage timing window")
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--out", type=Path, help="also write each result as OUT/<key>.json")
    parser.add_argument("--compile-mode", default="reduce-overhead", help="compile: torch.compile mode")
    parser.add_argument("--compile-backend", default="inductor", help="compile: torch.compile backend")
    args = parser.parse_args()
    if args.section == "env":
        emit(environment(), "environment", args.out)
    elif args.section == "summary":
        line = json.dumps(summary(args.out))
        (args.out / RESULTS_FILE).write_text(line + "\n")
        print(line)
    elif args.section == "correctness":
        emit(correctness(args), "fp16_vs_fp32", args.out)
    elif args.section == "bundled":
        emit(bundled(args), "bundled_model_vpq", args.out)
    elif args.section == "profile":
        emit(profile_online(args, args.out), f"profile_{args.preset}_online", args.out)
    elif args.section == "compile":
        emit(compiled_decoder(args), f"compiled_decoder_{args.preset}", args.out)
    else:
        bench(args, args.out)


if __name__ == "__main__":
    main()
