"""Cold start of a model load: ``load_checkpoint`` of the bundled model in fresh interpreters.

    python benchmarks/bench_cold_load.py [--runs 3]

Each run is a new Python process that imports torch, then loads the bundled checkpoint (read, check, build on
the meta device for the shape check, build, load). Prints the median seconds of both steps, which heavy modules
the load pulled in, and, as the baseline, the same load with ``torch._dynamo`` imported first (the compiler stack
that building on the meta device used to import). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch._dynamo", "torch._inductor", "sympy")
CHILD = """
import json, sys, time
start = time.perf_counter()
import torch
imported = time.perf_counter()
if {baseline}:
    import torch._dynamo
from dvis_models import load_checkpoint
from dvis_models.resources import BUNDLED_CHECKPOINT
load_checkpoint(BUNDLED_CHECKPOINT)
done = time.perf_counter()
print(json.dumps({{"import_torch_s": imported - start, "load_s": done - imported,
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def run(baseline: bool) -> dict:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    code = CHILD.format(baseline=baseline, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"load": [], "load_after_dynamo": []}
    for _ in range(args.runs):  # interleaved, so both see the same machine load
        results["load"].append(run(baseline=False))
        results["load_after_dynamo"].append(run(baseline=True))
    summary = {}
    for name, runs in results.items():
        summary[name] = {
            "import_torch_s": round(statistics.median(r["import_torch_s"] for r in runs), 2),
            "load_s": round(statistics.median(r["load_s"] for r in runs), 2),
            "heavy_modules": runs[0]["heavy"],
        }
        print(f"{name}: import torch {summary[name]['import_torch_s']} s, load {summary[name]['load_s']} s "
              f"(median of {args.runs}), heavy modules imported: {summary[name]['heavy_modules'] or 'none'}")
    summary["baseline_over_load"] = round(summary["load_after_dynamo"]["load_s"] / summary["load"]["load_s"], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
