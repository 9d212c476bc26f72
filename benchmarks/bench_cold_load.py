"""Cold start of a model load: ``load_checkpoint`` in fresh interpreters, for the bundled model and official-layout
R50 and Swin-L files holding seeded random weights.

    python benchmarks/bench_cold_load.py [--runs 3] [--models bundled,r50,swinl]

Each run is a new Python process that imports torch, then loads one checkpoint. ``load`` is ``load_checkpoint``:
read, check, build without random initialisation (the file holds every weight), copy the weights in. The
baseline ``init_build`` is the same load with a model built by ``build_model`` with its full random
initialisation, as ``load_checkpoint`` did before. For the bundled model a second baseline, ``after_dynamo``, is
the load with ``torch._dynamo`` imported first (the compiler stack that building on the meta device used to
import). Runs are interleaved so all see the same machine load; medians are reported, plus which heavy modules
the load pulled in. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEAVY = ("torch._dynamo", "torch._inductor", "sympy")
OFFICIAL = {"r50": "r50_vipseg_online", "swinl": "swinl_vipseg_online"}  # what an official file of each infers to
CHILD = """
import json, sys, time
start = time.perf_counter()
import torch
imported = time.perf_counter()
if {mode!r} == "after_dynamo":
    import torch._dynamo
from dvis_models import build_model, load_checkpoint
from dvis_models.checkpoint import infer_config, load_state, read_checkpoint
path = {path!r}
if {mode!r} == "init_build":  # the load as it was: a fully initialised build, then the file's weights
    state, config = read_checkpoint(path)
    model = build_model(config or infer_config(state, path))
    load_state(model, state, path)
else:
    load_checkpoint(path)
done = time.perf_counter()
print(json.dumps({{"import_torch_s": imported - start, "load_s": done - imported,
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def seeded_official_file(model: str, folder: Path) -> str:
    """An official-layout ``{"model": state_dict}`` file with seeded random weights (``tests/seeded_weights.py``)."""
    import torch

    from dvis_models import build_model
    from tests.seeded_weights import seeded_state

    skeleton = build_model(OFFICIAL[model], device="meta").state_dict()
    state = seeded_state({key: tuple(value.shape) for key, value in skeleton.items()}, seed=0)
    state = {key: value.to(skeleton[key].dtype) for key, value in state.items()}
    path = folder / f"{model}.pth"
    torch.save({"model": state}, path)
    return str(path)


def run(path: str, mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = CHILD.format(mode=mode, path=path, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default="bundled,r50,swinl", help="comma-separated: bundled, r50, swinl")
    args = parser.parse_args()
    from dvis_models.resources import BUNDLED_CHECKPOINT

    summary: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for model in args.models.split(","):
            path = str(BUNDLED_CHECKPOINT) if model == "bundled" else seeded_official_file(model, Path(folder))
            modes = ["load", "init_build"] + (["after_dynamo"] if model == "bundled" else [])
            results: dict[str, list[dict]] = {mode: [] for mode in modes}
            for _ in range(args.runs):  # interleaved, so all modes see the same machine load
                for mode in modes:
                    results[mode].append(run(path, mode))
            summary[model] = {"import_torch_s": round(statistics.median(r["import_torch_s"]
                                                                        for r in results["load"]), 2),
                              "heavy_modules": results["load"][0]["heavy"]}
            for mode, runs in results.items():
                summary[model][f"{mode}_s"] = round(statistics.median(r["load_s"] for r in runs), 2)
            summary[model]["init_build_over_load"] = round(summary[model]["init_build_s"] / summary[model]["load_s"], 2)
            line = ", ".join(f"{mode} {summary[model][f'{mode}_s']} s" for mode in modes)
            print(f"{model}: {line} (median of {args.runs} processes after import torch "
                  f"{summary[model]['import_torch_s']} s); init_build/load "
                  f"{summary[model]['init_build_over_load']}x; heavy modules imported: "
                  f"{summary[model]['heavy_modules'] or 'none'}", flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
