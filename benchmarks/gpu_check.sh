#!/usr/bin/env bash
# GPU readiness check: environment, the model tests on CUDA, CUDA fp16 vs CPU fp32 agreement, and R50 / Swin-L
# online and offline speed at 720p. Installs nothing: it uses this machine's python3 and its CUDA torch, and the
# project from this checkout (PYTHONPATH). Each section is its own process under its own time limit, so one that
# fails or hangs does not stop the others; the whole run stays under 10 minutes (about 5 expected).
#
#   bash benchmarks/gpu_check.sh               # on the GPU machine
#   bash benchmarks/gpu_check.sh --cpu-smoke   # every section on the CPU at tiny sizes, to check the script itself
#
# Logs and one JSON file per result go to $OUT (default ./gpu_check_out); the LAST printed line is one JSON
# object with every number, also written to $OUT/results.json. PYTHON=... picks another interpreter.
set -u

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$PWD/gpu_check_out}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
CHECK="$ROOT/benchmarks/gpu_check.py"
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.rc "$OUT"/*.log "$OUT"/tests.xml  # no stale results from an earlier run

if [ "${1:-}" = "--cpu-smoke" ]; then
    DEVICE=cpu
    SLOWER=5  # time limits x5: a shared CPU builds and runs these models far slower than the GPU machine
    CORRECTNESS=(--frames 2 --height 64 --width 96)
    BUNDLED=(--videos 1 --frames 12)  # fewer frames leave VPQ's longer windows empty
    BENCH=(--frames 1 --warmup 1 --stage-frames 1 --height 64 --width 96)
    PROFILE=(--frames 2 --warmup 1 --height 64 --width 96)
    COMPILE=(--height 64 --width 96 --compile-backend eager --compile-mode default)  # no C++ compiler needed
else
    DEVICE=cuda
    SLOWER=1
    CORRECTNESS=(--frames 6 --height 480 --width 854)
    BUNDLED=(--videos 8 --frames 24)  # the held-out split of dvis eval-bundled and the README's table
    BENCH=(--frames 24 --warmup 3 --stage-frames 6 --height 720 --width 1280)
    PROFILE=(--frames 12 --warmup 3 --height 720 --width 1280)
    COMPILE=(--height 720 --width 1280)  # inductor, reduce-overhead: CUDA graphs
fi
# the tests with a device fixture; none imports Qt
MODEL_TESTS=(tests/test_pipeline.py tests/test_postprocess.py tests/test_tracker.py tests/test_refiner.py
             tests/test_segmenter.py tests/test_checkpoint.py tests/test_host_work.py)

# section NAME SECONDS COMMAND...: runs COMMAND under a time limit, logs to $OUT/NAME.log, keeps its exit code.
section() {
    local name=$1 limit=$(( $2 * SLOWER )) start rc
    shift 2
    echo "=== $name (limit ${limit}s): $*"
    start=$(date +%s)
    timeout -k 10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    rc=${PIPESTATUS[0]}
    echo "$rc" > "$OUT/$name.rc"
    [ "$rc" -eq 124 ] && echo "!!! $name hit its ${limit}s limit"
    echo "=== $name: exit $rc after $(( $(date +%s) - start ))s"
}

cd "$ROOT"
echo "gpu_check: device $DEVICE, python $($PY -c 'import sys; print(sys.version.split()[0])'), output in $OUT"
if command -v nvidia-smi > /dev/null; then
    section nvidia_smi 30 nvidia-smi
else
    echo "nvidia-smi: not found"
fi
section env 60 "$PY" "$CHECK" env --out "$OUT"
"$PY" -c "import av" 2> /dev/null || echo "PyAV (av) is not installed: none of the selected tests needs it; video tests are not run here."
section tests 120 env DVIS_TEST_DEVICE="$DEVICE" "$PY" -m pytest -q -p no:cacheprovider -o timeout=100 \
    --junitxml="$OUT/tests.xml" "${MODEL_TESTS[@]}"
section correctness 100 "$PY" "$CHECK" correctness --device "$DEVICE" "${CORRECTNESS[@]}" --out "$OUT"
section bundled 90 "$PY" "$CHECK" bundled --device "$DEVICE" "${BUNDLED[@]}" --out "$OUT"
section bench_r50 80 "$PY" "$CHECK" bench --preset r50 --device "$DEVICE" "${BENCH[@]}" --out "$OUT"
section bench_swinl 110 "$PY" "$CHECK" bench --preset swinl --device "$DEVICE" "${BENCH[@]}" --out "$OUT"
# Where R50 online's time goes: kernels, launches and syncs per stage, top ops (OUT/profile_r50_online.txt).
section profile_r50 90 "$PY" "$CHECK" profile --preset r50 --device "$DEVICE" "${PROFILE[@]}" --out "$OUT"
# Opt-in path, benchmark only: the decoder through torch.compile; a failure here touches no other section.
section compile_decoder 150 "$PY" "$CHECK" compile --preset r50 --device "$DEVICE" "${COMPILE[@]}" --out "$OUT"
"$PY" "$CHECK" summary --out "$OUT"  # last line: every number as one JSON object (also $OUT/results.json)
