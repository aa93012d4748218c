"""What `reverie eval` runs (EvalConfig) and the checks before it runs: held-out seeds, and a model
and a world that match (docs/measures.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from reverie.errors import ReverieError
from reverie.eval.measures import DT_HORIZONS, HORIZONS
from reverie.models.world_model import START_CAPTION
from reverie.worlds.action_spec import ActionSpec

__all__ = ["PREDICTORS", "EvalConfig", "Setup", "held_out_seeds", "setup"]

PREDICTORS = ("model", "simulator", "copy-last")
QUICK_IDM_STEPS, QUICK_IDM_WIDTH = 400, 16


@dataclass
class EvalConfig:
    model: str | None = None  # dynamics run dir or "default"; required for predictor "model"
    world: str | None = None  # default: the model's world
    size: str | None = None  # default: the model's frame size, else 64x64
    predictor: str = "model"
    episodes: int = 16
    seed: int = 1_000_000  # first held-out seed; episode i uses seed + i
    context: int = 8  # real frames before generation starts
    horizons: tuple[int, ...] = HORIZONS
    dt_horizons: tuple[int, ...] = DT_HORIZONS
    dt_draws: int = 4  # random-action draws averaged per episode
    tf_positions: int = 8  # teacher-forced positions per episode
    drift_seconds: float = 300.0  # start from nothing: 5 minutes (9,000 frames at 30 FPS)
    drift_segment_seconds: float = 60.0  # one value per minute
    drift_frames: int | None = None  # overrides drift_seconds (frames, the start included)
    drift_segment: int | None = None  # overrides drift_segment_seconds
    drift_sessions: int = 1  # engine sessions dreaming side by side
    sheet_seconds: tuple[float, ...] = (0.0, 1.0, 10.0, 60.0, 300.0)
    probe_contexts: int = 4  # episodes whose context starts every probe branch
    probe_frames: int = 16
    # 64x64 Dungeon, held-out real pairs: 0.91-0.92 (0.91 through the small autoencoder), ~100 CPU-s;
    # was 0.78-0.81 with 400 steps, 32 episodes, a constant LR, no mirroring. Quick: 0.80-0.84, ~27 CPU-s.
    idm_steps: int = 1000
    idm_episodes: int = 128
    idm_length: int = 128
    idm_width: int = 32
    idm_cache: str | None = "default"  # trained IDMs kept in: "default" (idm_cache_dir()), a dir, None: none
    precision: str = "auto"  # as `reverie play` loads the model
    steps: int | None = None  # sampler steps per frame; None: the model's play setting
    context_noise: float | None = None  # None: the model's play setting
    context_blur: float | None = None  # None: the model's play setting (blur-input models only)
    start_caption: bool = START_CAPTION  # True: real starts take the world's caption as text (as the engine)
    workers: int | None = None  # processes (the drift rollout takes one); None: up to 2 free cores
    allow_overlap: bool = False
    quick: bool = False
    progress: bool = True
    strips: int = 3  # episodes shown as real | generated strips in the report
    extra: dict[str, Any] = field(default_factory=dict)

    def quickened(self) -> EvalConfig:
        """The short version: fewer episodes and draws, a 5-second drift, a brief IDM."""
        return EvalConfig(**{
            **asdict(self),
            "episodes": min(self.episodes, 4), "tf_positions": min(self.tf_positions, 3),
            "dt_draws": min(self.dt_draws, 2), "probe_contexts": min(self.probe_contexts, 2),
            "drift_frames": min(self.drift_frames or 150, 150), "drift_segment": min(self.drift_segment or 50, 50),
            "idm_steps": min(self.idm_steps, QUICK_IDM_STEPS), "idm_episodes": min(self.idm_episodes, 96),
            "idm_length": min(self.idm_length, 64), "idm_width": min(self.idm_width, QUICK_IDM_WIDTH),
            "quick": True,
        })  # fmt: skip


def held_out_seeds(model_config: dict[str, Any], seeds: list[int], allow_overlap: bool) -> list[int]:
    """The training seeds among `seeds` (from the model's config or its dataset); refuses an overlap unless allowed."""
    from reverie.data.seeds import expand_ranges
    from reverie.data.store import EpisodeStore, is_store

    data = model_config.get("data", {})
    path = data.get("path")
    if "seed_ranges" in data:  # recorded at training time: a shipped model has no store beside it
        train = expand_ranges(data["seed_ranges"])
    elif path and is_store(path):
        train = {s for s in EpisodeStore.open(path).seeds if s is not None}
    elif allow_overlap:
        return []
    else:
        raise ReverieError(
            f"cannot check the held-out seeds: the model's dataset {path!r} is not an episode store here "
            "and its config records no seed_ranges; pass --allow-overlap to evaluate anyway"
        )
    overlap = sorted(train.intersection(seeds))
    if overlap and not allow_overlap:
        lo, hi = (min(train), max(train)) if train else (0, 0)
        raise ReverieError(
            f"seeds {overlap[:5]}{'...' if len(overlap) > 5 else ''} were used to train the model "
            f"(its dataset holds seeds {lo}..{hi}); choose --seed outside them or pass --allow-overlap"
        )
    return overlap


@dataclass
class Setup:
    cfg: EvalConfig  # with model resolved to a run directory
    model_config: dict[str, Any]
    world: str
    size: str
    continuous: bool
    fps: float
    # A model trained on another action stream (latent actions named after the recorded ones): the
    # model action each world action plays, matched by name, the rest its null action, as a player's
    # keys would play them; None where the model acts with the world's own actions.
    act_map: list[int] | None = None
    act_map_names: dict[str, str] | None = None  # world action name -> model action name


def setup(cfg: EvalConfig) -> Setup:
    """Resolve the model and the world, and refuse a pair that does not match (naming both sides)."""
    from dataclasses import replace

    if cfg.predictor not in PREDICTORS:
        raise ReverieError(f"unknown predictor {cfg.predictor!r}; accepted: {', '.join(PREDICTORS)}")
    if cfg.episodes < 1:
        raise ReverieError(f"bad --episodes {cfg.episodes}: accepted >= 1")
    model_config: dict[str, Any] = {}
    if cfg.predictor == "model":
        from reverie.checkpoint import check_kind, load_run
        from reverie.models.shipped import DEFAULT_MODEL, resolve_model

        run = resolve_model(cfg.model or DEFAULT_MODEL)  # "default": the shipped model
        cfg = replace(cfg, model=run)
        model_config = load_run(run)[0]
        check_kind(model_config, "dynamics", run)
    data = model_config.get("data", {})
    world = cfg.world or data.get("world")
    if not world:
        raise ReverieError("--world is required (the model's config names none)")
    if data.get("world") and world != data["world"]:
        raise ReverieError(
            f"the model {cfg.model} was trained on {data['world']}, not the world {world}; "
            f"pass --world {data['world']}"
        )
    model_size = f"{data['width']}x{data['height']}" if data.get("width") else None
    size = cfg.size or model_size or "64x64"
    if model_size and size != model_size:
        raise ReverieError(
            f"the model {cfg.model} makes {model_size} frames, not the --size {size} asked of {world}; "
            f"pass --size {model_size}"
        )
    spec_dict = data.get("action_spec")
    if spec_dict and data.get("actions", "recorded") != "recorded" and cfg.model:
        # the keys a player gets: latent codes renamed by the run's saved binding (keys.json)
        from reverie.engine.key_binding import apply_binding, read_binding

        spec_dict = apply_binding(spec_dict, read_binding(cfg.model, spec_dict))
    model_spec = ActionSpec.from_dict(spec_dict) if spec_dict else None
    continuous = model_spec is not None and model_spec.is_box
    from reverie.worlds.make import action_spec, make_world

    env = make_world(world, size, continuous=continuous)
    try:
        world_spec, fps = ActionSpec.from_dict(action_spec(env)), float(env.metadata.get("render_fps") or 30)
    finally:
        env.close()
    act_map = None
    if model_spec is not None and data.get("actions", "recorded") != "recorded":
        act_map = _map_by_name(model_spec, world_spec)
    if act_map is None and model_spec is not None and _spec_key(model_spec) != _spec_key(world_spec):
        raise ReverieError(
            f"the model {cfg.model} acts with {_spec_text(model_spec)} but the world {world} with "
            f"{_spec_text(world_spec)}; evaluate it on the world it was trained on"
        )
    names = None
    if act_map is not None:
        w, m = list(world_spec.names or ()), list(model_spec.names or ())  # type: ignore[union-attr]
        names = {w[i]: m[j] for i, j in enumerate(act_map)}
    return Setup(cfg, model_config, world, size, continuous, fps, act_map, names)


def _map_by_name(model: ActionSpec, world: ActionSpec) -> list[int] | None:
    """World action -> model action of the same name (else the model's action 0, its null action),
    for a model trained on a stream whose actions were named after the recorded ones
    (`reverie eval-actions --save-keys`) or bound to keys (`reverie bind-keys`); None unless both
    are discrete, named, and share a name besides noop."""
    if not (model.is_discrete and world.is_discrete and model.names and world.names):
        return None
    m = list(model.names)
    if not set(m).intersection(world.names) - {"noop"}:
        return None
    return [m.index(n) if n in m else 0 for n in world.names]


def _spec_key(spec: ActionSpec) -> tuple[Any, ...]:
    if spec.is_discrete:
        return spec.kind, spec.n
    if spec.is_box:
        return spec.kind, spec.shape
    return (spec.kind,)


def _spec_text(spec: ActionSpec) -> str:
    if spec.is_discrete:
        return f"{spec.n} discrete actions ({', '.join(map(str, spec.names or []))})"
    if spec.is_box:
        return f"a continuous action of shape {list(spec.shape)}"
    return "no actions"
