#!/usr/bin/env bash
# The default model's last dynamics stage (blurred context, step 3 of runs/default.sh), continued from
# the shipped weights on one CUDA GPU for a fixed wall-clock budget: more data, 16x larger batches, and
# a schedule sized to the time by measuring the step first.
#
#   bash runs/default_gpu.sh                          # 6 minutes of training into runs/out/gpu
#   MINUTES=30 EPISODES=2000 bash runs/default_gpu.sh
#   LR=2e-4 EXTRA="--set flow.context_blur_max=0.4" OUT=runs/out/gpu_b DATA=runs/out/gpu/data \
#     bash runs/default_gpu.sh
#
# Leaves a package in $OUT/package (measure it on the CPU with `reverie eval --model $OUT/package`;
# the shipped numbers are always measured as the model is played, on the CPU). The same recipe runs on
# a CPU with DEVICE=cpu, only far slower (it runs end to end there, e.g. EPISODES=4 BATCH=4 MINUTES=1).
# A GPU keeps a small model's step time about flat up to a few hundred windows, so the batch grows
# instead of the step count. Measured on one H200 with 16 cores: recording runs at ~4,600 frames/s
# with 15 workers (600 episodes in ~65 s) and encoding at ~10,000 frames/s (reading the store).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out/gpu}
DATA=${DATA:-$OUT/data}
REVERIE=${REVERIE:-.venv/bin/reverie}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
EPISODES=${EPISODES:-600}             # x 500 frames, seeds 0..EPISODES-1 (eval uses seeds from 1,000,000)
WORKERS=${WORKERS:-$(nproc)}
MINUTES=${MINUTES:-6}                  # wall-clock budget of the training command (loading included)
BATCH=${BATCH:-256}
LR=${LR:-4e-4}
EMA=${EMA:-0.999}
PROBE_STEPS=${PROBE_STEPS:-40}
EXTRA=${EXTRA:-}                       # more --set options, e.g. "--set flow.context_blur_max=0.4"
PREPARE_ONLY=${PREPARE_ONLY:-0}        # 1: stop after the data and the step measurement
read -r -a reverie <<< "$REVERIE"
read -r -a extra <<< "$EXTRA"
mkdir -p "$OUT"

# 1. Data: the explore policy as in runs/default.sh, more episodes, one worker per core.
[ -f "$DATA/reverie_store.json" ] ||
  "${reverie[@]}" record --world reverie/Dungeon-v0 --episodes "$EPISODES" --steps 500 --seed 0 \
    --out "$DATA" --workers "$WORKERS"
[ -f "$OUT/ae/config.json" ] || cp -r reverie/weights/default/autoencoder "$OUT/ae"

source runs/default_objective.sh
recipe=(--data "$DATA" --autoencoder "$OUT/ae" --init default
  --set batch_size="$BATCH" --set ema_decay="$EMA" --set device="$DEVICE" --set threads=2
  "${OBJECTIVE[@]}" "${extra[@]}")

# 2. Measure the step: a short run (the first one also encodes the frames into the latent cache).
rm -rf "$OUT/probe"
"${reverie[@]}" train dynamics "${recipe[@]}" --out "$OUT/probe" --steps "$PROBE_STEPS" \
  --set lr="$LR" --set warmup_steps=10 --set log_every=$((PROBE_STEPS / 2))
[ "$PREPARE_ONLY" = 1 ] && exit 0
steps=$("$PYTHON" - "$OUT/probe" "$BATCH" "$MINUTES" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(f"{sys.argv[1]}/log.jsonl") if '"frames_per_s"' in line]
window = json.load(open(f"{sys.argv[1]}/config.json"))["model"]["max_context"] + 1
batch, minutes = int(sys.argv[2]), float(sys.argv[3])
steps_per_s = rows[-1]["frames_per_s"] / (batch * window)
print(max(100, int(steps_per_s * (minutes * 60 - 45) * 0.95)))  # ~45 s to load, sample and evaluate
EOF
)
echo "schedule: $steps steps of $BATCH windows in $MINUTES minutes"

# 3. Train (the schedule spans the measured steps; the wall-clock budget stops it in any case).
"${reverie[@]}" train dynamics "${recipe[@]}" --out "$OUT/dit" --steps "$steps" \
  --set lr="$LR" --set warmup_steps=100 --set minutes="$MINUTES" --set checkpoint_minutes=2 \
  --set sample_every=100000

# 4. Package it with the play settings the recipe saved with the run.
"${reverie[@]}" export "$OUT/dit" --autoencoder "$OUT/ae" --out "$OUT/package" --force
echo "done: reverie eval --model $OUT/package --quick"
