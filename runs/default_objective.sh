# The default model's last dynamics stage and its play settings, sourced by runs/default.sh (CPU) and
# runs/default_gpu.sh (GPU) so both train the same model: the play-layout objective with blurred
# context (reverie/models/flow.py, flow.context_blur_max: each play window's context mixed with its
# 3x3 latent average by a weight uniform in [0, 1], the targets real), which keeps the dream from the
# player's start within the real world's Frechet floor for minutes (docs/bakeoff.md, "The long run,
# sixth session"), saved with the run as its play settings (1 step, context noise 0.1).
OBJECTIVE=(
  --set flow.context_blur_max=1.0
  --set sampler.steps=1 --set sampler.context_noise=0.1
)
