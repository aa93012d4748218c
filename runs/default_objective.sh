# The default model's fine-tune objective and its play settings, sourced by runs/default.sh (CPU) and
# runs/default_gpu.sh (GPU) so both train the same model: the play-layout objective with the
# adversarial term (reverie/models/critic.py) on detail only (its gradient reaches the sample minus its
# 2x2-latent-cell means, so colour and brightness stay the flow loss's), saved with the run as its
# play settings (1 step, context noise 0.2). No self-forcing: it pulled every long dream into one
# colour cast (docs/bakeoff.md, "The long run, third session").
OBJECTIVE=(
  --set flow.adv_weight=0.15 --set flow.adv_lr=5e-4 --set flow.adv_detail_block=2
  --set sampler.steps=1 --set sampler.context_noise=0.2
)
