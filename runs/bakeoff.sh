#!/usr/bin/env bash
# The dynamics bake-off: candidates from scratch on the same data, the same CPU budget each, judged by
# `reverie eval --quick` at each model's play settings (docs/bakeoff.md holds the result). The third
# candidate of the rounds there, the frame-stack convolutional model, lost and was removed; commit
# f4d1f00 has it (`train conv --preset conv-small --set batch_size=64`).
#
#   bash runs/bakeoff.sh                  # 20 CPU-minutes per candidate, side by side
#   CPU_MINUTES=45 bash runs/bakeoff.sh   # a larger budget
#
# The budget is CPU time (`--set cpu_minutes=N`), not wall time, so candidates that share a core with
# each other or with other work still get equal compute. Every run resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out}
PY=${PY:-.venv/bin}
CPU_MINUTES=${CPU_MINUTES:-20}
reverie() { "$PY/reverie" "$@"; }
mkdir -p "$OUT"

# The same 200,000 Dungeon frames (400 explore episodes, seeds 0-399) and the shipped autoencoder.
[ -f "$OUT/dungeon200k/reverie_store.json" ] ||
  reverie record --world reverie/Dungeon-v0 --episodes 400 --steps 500 --seed 0 --out "$OUT/dungeon200k"
AE=reverie/weights/default/autoencoder

# Constant learning rate after warm-up and a short EMA, so a run stopped by its budget is not
# stopped mid-schedule. The DiT trains on windows of 9 frames in the play layout (9 targets each).
common=(--data "$OUT/dungeon200k" --autoencoder "$AE" --window 9 --text-encoder minilm --steps 100000
  --set lr=5e-4 --set warmup_steps=50 --set min_lr_ratio=1.0 --set ema_decay=0.99 --set threads=1
  --set cpu_minutes="$CPU_MINUTES" --set checkpoint_minutes=10)
train() {  # name, then its own options
  local name=$1
  shift
  local resume=()
  [ -f "$OUT/bake_$name/config.json" ] && resume=(--resume)
  reverie train dynamics "${common[@]}" "$@" --out "$OUT/bake_$name" "${resume[@]}" > "$OUT/bake_$name.log" 2>&1
}
train p1 --preset small --set batch_size=16 &
train p2 --preset small --set model.patch=2 --set batch_size=16 &
wait

for name in p1 p2; do
  reverie eval --model "$OUT/bake_$name" --quick --json > "$OUT/bake_$name.eval.json"
  reverie bench engine --model "$OUT/bake_$name" --frames 1000 --json > "$OUT/bake_$name.bench.json"
done
