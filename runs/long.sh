#!/usr/bin/env bash
# The long run of the bake-off's winner (docs/bakeoff.md, third round): the patch-2 DiT from scratch
# with the bake-off's settings, in two lines side by side on one core each, resumed where they stopped.
#
#   bash runs/long.sh                 # 60 more CPU-minutes for each line
#   CPU_MIN=150 bash runs/long.sh     # a longer session
#   OUT=/tmp/mine bash runs/long.sh   # somewhere else
#
#   control  the objective of the bake-off (rectified flow, play layout), lr 5e-4 constant, EMA 0.99
#   critic   a copy of the control taken at BRANCH_CPU_MIN, then the same plus the adversarial term on
#            detail only at a fifth of the shipped line's weight (0.03): at 0.15, 31 CPU-minutes took
#            this model to the shipped line's trade (sharpness 2.3x real at k = 16, PSNR@16 7 dB below
#            copy-last; docs/bakeoff.md), so this line asks whether a little buys sharpness for free
# A budget is CPU time of this invocation (`--set cpu_minutes`), so the two lines stay at equal
# compute; each saves every 8 minutes and on SIGTERM. Judge them with
#   reverie eval --model "$OUT/control" --episodes 16 --seed 1000000 --steps 1 --json --report r.html
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out/longrun}
PY=${PY:-.venv/bin}
CPU_MIN=${CPU_MIN:-60}
BRANCH_CPU_MIN=${BRANCH_CPU_MIN:-157}
DATA=${DATA:-runs/out/long/data}
AE=${AE:-runs/out/long/ae}
reverie() { "$PY/reverie" "$@"; }
mkdir -p "$OUT"

# 1,000 Dungeon episodes of 500 frames (seeds 0-999; eval uses seeds from 1,000,000) and a copy of the
# shipped autoencoder, as runs/default.sh makes them.
[ -f "$DATA/reverie_store.json" ] ||
  reverie record --world reverie/Dungeon-v0 --episodes 1000 --steps 500 --seed 0 --out "$DATA"
[ -f "$AE/config.json" ] || cp -r reverie/weights/default/autoencoder "$AE"

common=(--data "$DATA" --autoencoder "$AE" --window 9 --text-encoder minilm --steps 100000
  --preset small --set model.patch=2 --set batch_size=16
  --set lr=5e-4 --set warmup_steps=50 --set min_lr_ratio=1.0 --set ema_decay=0.99 --set threads=1
  --set checkpoint_minutes=8)
critic=(--set flow.adv_weight=0.03 --set flow.adv_lr=5e-4 --set flow.adv_detail_block=2)

run() {  # core, name, budget in CPU-minutes, then its own options
  local core=$1 name=$2 minutes=$3
  shift 3
  local start=()
  [ -f "$OUT/$name/config.json" ] && start=(--resume)
  taskset -c "$core" "$PY/reverie" train dynamics "${common[@]}" --set cpu_minutes="$minutes" "$@" \
    --out "$OUT/$name" "${start[@]}" >> "$OUT/$name.log" 2>&1
}

cpu_min() {  # CPU-minutes a run has trained (0 before its first save)
  "$PY/python" -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["cpu_s"] // 60))' \
    "$OUT/$1/train_state.json" 2>/dev/null || echo 0
}

if [ ! -f "$OUT/critic/config.json" ]; then
  done_min=$(cpu_min control)
  if [ "$done_min" -lt "$BRANCH_CPU_MIN" ]; then  # the control alone until the branch point
    run 0 control $((BRANCH_CPU_MIN - done_min))
  fi
  cp -r "$OUT/control" "$OUT/critic"
  run 1 critic "$CPU_MIN" "${critic[@]}" --allow-config-change &
  run 0 control "$CPU_MIN"
  wait
else
  run 0 control "$CPU_MIN" &
  run 1 critic "$CPU_MIN" "${critic[@]}"
  wait
fi
