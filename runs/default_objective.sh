# The default model's fine-tune objective and its play settings, sourced by runs/default.sh (CPU) and
# runs/default_gpu.sh (GPU) so both train the same model: the play-layout objective with self-forcing
# (half the play-layout windows see the model's own 1-step rollout at context noise 0.2) and the
# adversarial term (reverie/models/critic.py), saved with the run as its play settings (1 step, 0.2).
OBJECTIVE=(
  --set flow.p_self=0.5 --set flow.self_steps=1 --set flow.self_context_noise=0.2
  --set flow.adv_weight=0.15 --set flow.adv_lr=5e-4
  --set sampler.steps=1 --set sampler.context_noise=0.2
)
