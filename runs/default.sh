#!/usr/bin/env bash
# The reference recipe for reverie's shipped default world model, from nothing, on a 2-core CPU.
#
#   bash runs/default.sh                 # everything; rerun it to continue where it stopped
#   OUT=/tmp/mine bash runs/default.sh   # somewhere else
#   EPISODES=2000 bash runs/default.sh   # more data (x 500 frames; recorded once per OUT)
#   PROCS=2 bash runs/default.sh         # the dynamics stages on both cores (torchrun), ~1.6x faster
#
# Every stage saves every 8 minutes and on Ctrl-C, and a rerun continues the stage that was running;
# a finished stage is a copy the next one starts from, so stopping never loses more than 8 minutes.
# The result replaces reverie/weights/default (bf16 safetensors, configs, model card with the
# measurements), which `reverie play` loads when given no --model. About 10 core-hours, one core at a
# time (PROCS=2: the dynamics stages on both): docs/bakeoff.md has the measurements behind each stage,
# runs/long.sh the experiments that go on from the same line, runs/default_gpu.sh the last dynamics
# stage on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out/default}
PY=${PY:-.venv/bin}
EPISODES=${EPISODES:-1000}
PROCS=${PROCS:-1}  # processes for the dynamics stages; the 16 windows of a step are split among them
[ $((16 % PROCS)) -eq 0 ] || { echo "PROCS must divide 16 (the windows of a step), got $PROCS" >&2; exit 2; }
reverie() { "$PY/reverie" "$@"; }
source runs/default_objective.sh
mkdir -p "$OUT"

# 1. Data: EPISODES Dungeon episodes of 500 frames under the human-like explore policy (1000: 500,000
#    frames, seeds 0-999, ~11 minutes on one core). Eval uses seeds from 1,000,000 up, never touched here.
[ -f "$OUT/data/reverie_store.json" ] ||
  reverie record --world reverie/Dungeon-v0 --episodes "$EPISODES" --steps 500 --seed 0 --out "$OUT/data"

# 2. The shipped autoencoder (64x64x3 <-> 8x8x12 latents) is kept: its encoder defines the latents
#    every stage below learns, and step 5 tunes only its decoder. A copy, since step 7 replaces it.
[ -f "$OUT/ae/config.json" ] || cp -r reverie/weights/default/autoencoder "$OUT/ae"

# 3. Dynamics, in three stages of one line: the DiT from scratch (small preset, patch 2: 16 tokens a
#    frame, 7.56 M parameters) with the play-layout objective (reverie/models/flow.py: t covering
#    t = 1, context noise up to 0.5, 90% of windows in the play layout) at a constant rate; a copy
#    annealed to rate zero (a constant rate hides the line's level under its noise); a copy of that
#    with blurred context (flow.context_blur_max, runs/default_objective.sh), which keeps the dream
#    together for minutes. The first start encodes the frames once (~15 minutes on one core); then
#    ~1.35 s a step of 16 windows on one core.
common=(--data "$OUT/data" --autoencoder "$OUT/ae" --window 9 --text-encoder minilm --preset small
  --set model.patch=2 --set batch_size=$((16 / PROCS)) --set ema_decay=0.99 --set threads=1 --set checkpoint_minutes=8)
dynamics() {  # one process, or PROCS of them through torchrun (one core each; gradients averaged)
  if [ "$PROCS" -gt 1 ]; then
    "$PY/torchrun" --nproc_per_node="$PROCS" --no-python "$PY/reverie" train dynamics "$@"
  else
    reverie train dynamics "$@"
  fi
}
stage() {  # name, the finished stage it starts from ("" for none), then its options
  local name=$1 from=$2
  shift 2
  local start=()
  if [ -f "$OUT/$name/config.json" ]; then
    start=(--resume --allow-config-change)
  elif [ -n "$from" ]; then
    rm -rf "$OUT/$name.new" && cp -r "$OUT/$from" "$OUT/$name.new" && mv "$OUT/$name.new" "$OUT/$name"
    start=(--resume --allow-config-change)
  fi
  dynamics "${common[@]}" "$@" --out "$OUT/$name" "${start[@]}"
}
stage line "" --steps 20129 --set lr=5e-4 --set warmup_steps=50 --set min_lr_ratio=1.0   # ~430 CPU-min
stage anneal line --steps 22529 --set lr=5e-4 --set warmup_steps=20129 --set min_lr_ratio=0.0  # ~55
stage blur anneal --steps 25141 --set lr=1e-4 --set warmup_steps=22529 --set min_lr_ratio=1.0 \
  "${OBJECTIVE[@]}"                                                                          # ~75

# 4. Play settings: 1 Euler step at context noise 0.1 (measured on this line: 2 or 4 steps and
#    context noise 0.2 or 0.3 sharpen nothing, and one step keeps a frame in the engine's budget).
play=(--steps 1 --context-noise 0.1)

# 5. The decoder tuned to the model as it is played (encoder frozen, so the latents stay valid), with
#    a patch critic that keeps its frames sharp: first to the annealed model, then to the blurred one
#    (the first tune starts from the shipped decoder; the release's started from the one before it).
tune() {  # name, the package it learns to decode, steps
  local start=()
  [ -f "$OUT/$1/config.json" ] && start=(--resume)
  reverie train autoencoder --data "$OUT/data" --tune-to "$OUT/$2" --out "$OUT/$1" --steps "$3" \
    --set threads=1 --set batch_size=32 --set lr=1e-4 --set warmup_steps=20 --set min_lr_ratio=1.0 \
    --set beta1=0.5 --set beta2=0.9 --set weight_decay=0.0 --set ema_decay=0.99 --set checkpoint_minutes=8 \
    --set loss.adv_weight=0.2 --set loss.bank_horizon=16 --set loss.near_horizon=3 "${start[@]}"
}
[ -f "$OUT/dec_anneal/config.json" ] ||
  reverie export "$OUT/anneal" --out "$OUT/anneal_play" --force "${play[@]}"
tune dec_anneal anneal_play 3114  # ~45 CPU-min each
[ -f "$OUT/dec_blur/config.json" ] ||
  reverie export "$OUT/blur" --autoencoder "$OUT/dec_anneal" --out "$OUT/blur_play" --force "${play[@]}"
tune dec_blur blur_play 3213

# 6. Package as it will be played (bf16), measure the package itself on held-out seeds (one JSON line
#    each), and 7. ship it with the numbers.
PKG="$OUT/package"
reverie export "$OUT/blur" --autoencoder "$OUT/dec_blur" --out "$PKG" --force "${play[@]}"
reverie eval --model "$PKG" --episodes 16 --seed 1000000 --dream-sessions 4 --json \
  --report "$OUT/report.html" > "$OUT/measured.jsonl"
reverie eval-text --model "$PKG" --json >> "$OUT/measured.jsonl"
reverie bench engine --model "$PKG" --frames 1000 --json >> "$OUT/measured.jsonl"
reverie bench engine --model "$PKG" --frames 1000 --sessions 2 --json >> "$OUT/measured.jsonl"
reverie export "$OUT/blur" --autoencoder "$OUT/dec_blur" --out reverie/weights/default --force "${play[@]}" \
  --notes runs/default_notes.md --measured "$OUT/measured.jsonl"
echo "done: reverie play --open"
