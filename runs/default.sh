#!/usr/bin/env bash
# The reference recipe for reverie's shipped default world model, on a 2-core CPU (about 2.5 hours).
#
#   bash runs/default.sh                 # everything; rerun it to continue where it stopped
#   OUT=/tmp/mine bash runs/default.sh   # somewhere else
#
# Every training step resumes (`--resume`), so a stopped run continues from its last checkpoint.
# The result replaces reverie/weights/default (bf16 safetensors, configs, model card with the
# measurements below), which `reverie play` loads when given no --model.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/out/default}
PY=${PY:-.venv/bin}
reverie() { "$PY/reverie" "$@"; }
mkdir -p "$OUT"

# 1. Data: the autoencoder learns frames from 60 short Dungeon episodes (9,000 frames); the dynamics
#    model learns from 100 longer ones (40,000 frames) under the human-like explore policy. Eval
#    uses seeds from 1,000,000 up, which neither set touches.
[ -f "$OUT/ae_data/reverie_store.json" ] ||
  reverie record --world reverie/Dungeon-v0 --episodes 60 --steps 150 --seed 1000 --out "$OUT/ae_data"
[ -f "$OUT/data/reverie_store.json" ] ||
  reverie record --world reverie/Dungeon-v0 --episodes 100 --steps 400 --seed 0 --out "$OUT/data"

# 2. Frame autoencoder, 64x64x3 <-> 8x8x12 (~22 minutes on 2 cores: 900 steps of 32 frames).
reverie train autoencoder --data "$OUT/ae_data" --preset small --out "$OUT/ae" --resume \
  --steps 900 --set warmup_steps=50 --set ema_decay=0.995 --set sample_every=200

# 3. Dynamics DiT (small preset, 7.5 M parameters) on 9-frame windows with MiniLM text vectors
#    (~2 hours on 2 cores: 3,800 steps of 16 windows).
reverie train dynamics --data "$OUT/data" --autoencoder "$OUT/ae" --out "$OUT/dit" --resume \
  --preset small --window 9 --text-encoder minilm --steps 3800 \
  --set batch_size=16 --set lr=8e-4 --set model.max_context=8

# 4. A sharper decoder for the same latents: the encoder is frozen, so the dynamics model's latents
#    do not change (~40 minutes on 1 core; it can run beside step 3, pinned to the other core).
reverie train autoencoder --data "$OUT/data" --init "$OUT/ae" --freeze-encoder --out "$OUT/ae_sharp" \
  --resume --steps 2400 --set lr=3e-4 --set warmup_steps=50 --set ema_decay=0.995 --set sample_every=400

# 5. Package, measure the package on held-out seeds (one JSON line each), and ship it with the numbers.
PKG="$OUT/package"
reverie export "$OUT/dit" --autoencoder "$OUT/ae_sharp" --out "$PKG" --force
reverie eval --model "$PKG" --world reverie/Dungeon-v0 --episodes 16 --seed 1000000 --json \
  --report "$OUT/report.html" > "$OUT/measured.jsonl"
reverie eval-text --model "$PKG" --json >> "$OUT/measured.jsonl"
reverie bench engine --model "$PKG" --frames 1000 --steps 2 --json >> "$OUT/measured.jsonl"
reverie export "$OUT/dit" --autoencoder "$OUT/ae_sharp" --out reverie/weights/default --force \
  --notes runs/default_notes.md --measured "$OUT/measured.jsonl"
echo "done: reverie play --open"
