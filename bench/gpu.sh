#!/usr/bin/env bash
# The H200 rows of docs/performance.md ("Speed presets"), in one command, inside 9 minutes:
#   1. 1.3B 832x480x81, 50 steps, guidance 5.0: plain, fast, turbo, and fast under an 8.19 GB memory cap;
#   2. with the time left, 14B 1280x720x81: a few steps of each preset, per step, extrapolated to 50 (labelled).
# Random weights with the real configs (adapters/random_weights.py): timing and closeness only.
#
#   bench/gpu.sh [--wheels DIR] [--out DIR] [--device cuda|cpu] [--budget-s N]
#
# The H200 machine has torch, transformers, accelerate and peft but not diffusers: Python packages that do not
# import are installed from DIR (default .whl) with `pip install --no-index --no-deps --target`, and put on
# PYTHONPATH. Prepare the wheels here (Python 3.12, manylinux) with, for example:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl diffusers==0.42.1 ftfy==6.3.1 wcwidth importlib-metadata zipp torchao
# (torchao: the release built for the machine's torch; without it turbo's FP8 falls back, recorded in the rows).
#
# --device cpu runs the same two rows at stand-in size (tests/test_speed_bench.py): the script's logic, no GPU.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WHEELS="$ROOT/.whl"
OUT="$ROOT/bench/results/gpu"
DEVICE="cuda"
BUDGET_S=540
PY="${PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) WHEELS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --budget-s) BUDGET_S="$2"; shift 2 ;;
    *) echo "bench/gpu.sh: unknown argument $1 (see the header of this file)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
START=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }

# 1. the Python packages the bench imports: install what is missing from the wheels folder
MISSING=$("$PY" - <<'EOF'
import importlib.util
need = {"diffusers": "diffusers", "ftfy": "ftfy", "torchao": "torchao", "psutil": "psutil", "yaml": "pyyaml",
        "tokenizers": "tokenizers", "safetensors": "safetensors", "PIL": "pillow", "numpy": "numpy",
        "transformers": "transformers", "accelerate": "accelerate", "peft": "peft",
        "importlib_metadata": "importlib-metadata"}
print(" ".join(pip for mod, pip in need.items() if importlib.util.find_spec(mod) is None))
EOF
)
echo "missing Python packages: ${MISSING:-none}" | tee "$OUT/setup.txt"
if [ -n "$MISSING" ]; then
  if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    echo "bench/gpu.sh: $WHEELS holds no wheels for: $MISSING (see the header for the pip download command)" >&2
    [ "$MISSING" = "torchao" ] || exit 2  # torchao alone: turbo's FP8 falls back, and says so
  else
    SITE="${TMPDIR:-/tmp}/wanflow-site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch, diffusers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__, 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" | tee -a "$OUT/setup.txt"

# 2. the rows (each run writes its JSON rows as soon as each preset is measured)
if [ "$DEVICE" = "cpu" ]; then  # the script's logic at stand-in size: the tiny stand-ins, a few steps
  ROW1=(--variant wan-tiny --width 32 --height 32 --frames 5 --steps 3 --warmup-steps 1 --guidance 5.0 --no-compile
        --cache-threshold 0.3)
  ROW2=(--variant wan-tiny-large --width 32 --height 32 --frames 5 --steps 2 --warmup-steps 1 --extrapolate-to 50
        --no-compile --cache-threshold 0.3)
else
  ROW1=(--variant wan2.1-t2v-1.3b@random --width 832 --height 480 --frames 81 --steps 50 --guidance 5.0 --cap-gb 8.19)
  ROW2=(--variant wan2.1-t2v-14b@random --width 1280 --height 720 --frames 81 --steps 2 --warmup-steps 1
        --extrapolate-to 50)
fi
status=0
timeout --signal=INT "$(left)" "$PY" "$ROOT/bench/speed.py" --device "$DEVICE" --label "${DEVICE}-row1" \
  --out-dir "$OUT" "${ROW1[@]}" 2>&1 | tee "$OUT/row1.log" || status=$?
if [ "$(left)" -gt 60 ]; then
  timeout --signal=INT "$(left)" "$PY" "$ROOT/bench/speed.py" --device "$DEVICE" --label "${DEVICE}-row2" \
    --out-dir "$OUT" "${ROW2[@]}" 2>&1 | tee "$OUT/row2.log" || status=$?
else
  echo "row 2 skipped: $(left) s of the ${BUDGET_S} s budget left" | tee "$OUT/row2.log"
fi
echo "rows: $(ls "$OUT"/*.json 2>/dev/null | wc -l) JSON files in $OUT; $(( $(date +%s) - START )) s" | tee -a "$OUT/setup.txt"
exit $status
