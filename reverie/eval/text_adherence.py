"""Text adherence: does a video generated from a prompt show the scene the prompt describes?

    result = evaluate_text(TextAdherenceConfig(model="runs/out/default_dit", prompts=32, frames=8))
    print(result.to_json())

1. An attribute classifier (`reverie.eval.attributes`: wall material, wall colour, light, room or
   corridor) is trained on real Dungeon frames of seeds `seed .. seed + classifier_seeds - 1`; its
   accuracy on real frames of the prompt seeds is the ceiling (per frame, and per clip by majority).
2. Prompts come from other held-out seeds (`seed + PROMPT_OFFSET ..`): the world's own caption of a
   region ("held_out"), and a paraphrase of the same attributes in words the world never uses
   (`reverie.eval.paraphrase`).
3. For each prompt the model generates `frames` frames from the prompt alone (no start image; actions
   from the explore prior as in `reverie generate`; generation seed `seed + i` for prompt i, the same
   for every prompt set, so the sets differ only in their text). Each frame is classified; the clip's
   answer per attribute is the majority over its frames; accuracy is against the prompt's attributes.
4. The same seeds with no text ("null_prompt") show what the model draws unasked: text that works
   scores above it; a model that ignores text scores about the same.
Chance is the majority-class rate of the prompts' labels (what one fixed guess scores) and 1/classes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from reverie.errors import ReverieError
from reverie.eval.attributes import (
    ATTRIBUTES,
    WORLD,
    AttributeClassifier,
    ClassifierConfig,
    SceneClip,
    accuracy,
    stack_frames,
    train_classifier,
    walk_scenes,
)
from reverie.eval.paraphrase import paraphrase

__all__ = [
    "Prompt",
    "TextAdherenceConfig",
    "TextAdherenceResult",
    "evaluate_text",
    "make_prompts",
    "score_prompts",
]

PROMPT_OFFSET = 100_000  # prompt seeds start here after the classifier's seeds
REGIONS_PER_SEED = 4  # prompts drawn from each prompt seed's regions (a reset costs ~250 steps)

# (prompt text or None, generation seed) -> uint8 frames (T, H, W, 3)
VideoGenerator = Callable[[str | None, int], np.ndarray]


@dataclass
class TextAdherenceConfig:
    model: str | None = None  # dynamics run dir
    prompts: int = 32
    frames: int = 8  # generated frames per prompt
    seed: int = 3_000_000  # far from training seeds (0..99,999 for the shipped data)
    steps: int = 2  # sampler steps per frame
    guidance: float = 1.0  # classifier-free text guidance (1 = conditional only)
    classifier_seeds: int = 32  # real dungeons the classifier learns from (~15 regions each)
    region_steps: int = 24  # explore steps per region (every `stride`-th frame kept)
    stride: int = 3
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    allow_overlap: bool = False
    progress: bool = True


@dataclass
class Prompt:
    caption: str  # the world's own caption of the region
    paraphrase: str  # the same attributes in our words
    labels: np.ndarray  # (A,) class per attribute
    gen_seed: int
    clip: SceneClip  # the real frames of that region (the perfect answer)


@dataclass
class TextAdherenceResult:
    model: str | None
    model_id: str | None
    world: str
    size: str
    prompts: int
    frames: int
    seed: int
    sampler_steps: int
    guidance: float
    attributes: dict[str, list[str]]
    classifier_train_frames: int
    classifier_steps: int
    ceiling_real_frames: dict[str, float]  # classifier on held-out real frames
    ceiling_real_clips: dict[str, float]  # majority over each prompt's real clip: a perfect model's score
    chance_majority: dict[str, float]
    chance_uniform: dict[str, float]
    held_out: dict[str, float]  # per attribute, "mean" and "mean_stderr"
    paraphrase: dict[str, float]
    null_prompt: dict[str, float]
    examples: list[list[str]]  # [caption, paraphrase] of the first prompts
    seed_overlap: list[int]

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def prompt_seeds(cfg: TextAdherenceConfig) -> list[int]:
    """The dungeons prompts come from: REGIONS_PER_SEED prompts per dungeon, on average."""
    return [cfg.seed + PROMPT_OFFSET + i for i in range(-(-cfg.prompts // REGIONS_PER_SEED))]


def make_prompts(clips: list[SceneClip], n: int, seed: int) -> list[Prompt]:
    """n prompts from distinct regions of held-out clips; prompt i generates with seed + i."""
    if len(clips) < n:
        raise ReverieError(f"only {len(clips)} held-out regions for {n} prompts; accepted: fewer --prompts")
    rng = np.random.default_rng([seed, 5])
    pick = sorted(rng.choice(len(clips), n, replace=False).tolist())
    return [
        Prompt(
            c.caption,
            paraphrase(c.scene, np.random.default_rng([seed, c.seed, c.region])),
            c.labels,
            seed + i,
            c,
        )
        for i, c in enumerate(clips[j] for j in pick)
    ]


def clip_answer(classifier: AttributeClassifier, frames: np.ndarray) -> np.ndarray:
    """The clip's class per attribute: the majority over its frames (ties go to the lower index). (A,)"""
    pred = classifier.predict(frames)  # (T, A)
    return np.array(
        [np.bincount(pred[:, i], minlength=len(c)).argmax() for i, c in enumerate(ATTRIBUTES.values())]
    )


def score_prompts(
    generate: VideoGenerator,
    classifier: AttributeClassifier,
    prompts: list[Prompt],
    text: Callable[[Prompt], str | None],
    progress: bool = False,
    desc: str = "generate",
) -> dict[str, float]:
    """Per-attribute accuracy, their mean and its standard error over prompts, of the clips generated
    from text(prompt) against each prompt's labels."""
    from tqdm import tqdm

    answers = [
        clip_answer(classifier, generate(text(p), p.gen_seed))
        for p in tqdm(prompts, desc=desc, unit="video", disable=not progress)
    ]
    hits = np.stack(answers) == np.stack([p.labels for p in prompts])  # (N, A)
    # The spread of the per-prompt mean over prompts: whether two prompt sets differ beyond noise.
    stderr = float(hits.mean(1).std(ddof=1) / np.sqrt(len(hits))) if len(hits) > 1 else float("nan")
    return {**accuracy(np.stack(answers), np.stack([p.labels for p in prompts])), "mean_stderr": stderr}


def chance_levels(prompts: list[Prompt]) -> tuple[dict[str, float], dict[str, float]]:
    labels = np.stack([p.labels for p in prompts])  # (N, A)
    major = {a: float(np.bincount(labels[:, i]).max() / len(labels)) for i, a in enumerate(ATTRIBUTES)}
    uniform = {a: 1.0 / len(c) for a, c in ATTRIBUTES.items()}
    return (
        {**major, "mean": float(np.mean(list(major.values())))},
        {**uniform, "mean": float(np.mean(list(uniform.values())))},
    )


def measure(
    generate: VideoGenerator, size: str, cfg: TextAdherenceConfig
) -> tuple[dict[str, Any], list[Prompt], AttributeClassifier]:
    """Every score for one video generator at frame size `size`: trains the judge, draws the prompts,
    generates and scores each prompt set. Needs no model run, so tests can pass a simulated generator."""
    if cfg.prompts < 2 or cfg.frames < 1:
        raise ReverieError(
            f"bad --prompts {cfg.prompts} / --frames {cfg.frames}: accepted 2 or more prompts, 1 or more frames"
        )
    train_seeds = [cfg.seed + i for i in range(cfg.classifier_seeds)]
    train = walk_scenes(size, train_seeds, cfg.region_steps, cfg.stride, cfg.progress, "classifier frames")
    held = walk_scenes(size, prompt_seeds(cfg), cfg.region_steps, cfg.stride, cfg.progress, "held-out frames")
    frames, labels = stack_frames(train)
    clf = train_classifier(frames, labels, cfg.classifier, progress=cfg.progress)
    held_frames, held_labels = stack_frames(held)
    prompts = make_prompts(held, cfg.prompts, cfg.seed)
    major, uniform = chance_levels(prompts)
    scores = {
        "classifier_train_frames": len(frames),
        "ceiling_real_frames": accuracy(clf.predict(held_frames), held_labels),
        "ceiling_real_clips": accuracy(
            np.stack([clip_answer(clf, p.clip.frames) for p in prompts]),
            np.stack([p.labels for p in prompts]),
        ),
        "chance_majority": major,
        "chance_uniform": uniform,
        "held_out": score_prompts(
            generate, clf, prompts, lambda p: p.caption, cfg.progress, "held-out prompts"
        ),
        "paraphrase": score_prompts(
            generate, clf, prompts, lambda p: p.paraphrase, cfg.progress, "paraphrases"
        ),
        "null_prompt": score_prompts(generate, clf, prompts, lambda p: None, cfg.progress, "null prompt"),
    }
    return scores, prompts, clf


def evaluate_text(cfg: TextAdherenceConfig) -> TextAdherenceResult:
    """Load the model, check its world and held-out seeds, and measure its text adherence."""
    from reverie.checkpoint import check_kind, load_run
    from reverie.eval.run import held_out_seeds
    from reverie.generate.modes import GenOptions, generate
    from reverie.models.sampler import SamplerConfig
    from reverie.models.shipped import resolve_model
    from reverie.models.world_model import load_world_model

    if cfg.model is None:
        raise ReverieError("--model is required: a dynamics run directory")
    run = resolve_model(cfg.model)  # "default": the shipped model
    config = load_run(run)[0]
    check_kind(config, "dynamics", run)
    world = config.get("data", {}).get("world")
    if world != WORLD:
        raise ReverieError(
            f"text adherence scores Dungeon scene attributes; the model's world is {world!r}; accepted: a {WORLD} model"
        )
    overlap = held_out_seeds(config, prompt_seeds(cfg), cfg.allow_overlap)
    model = load_world_model(run)
    sampler = SamplerConfig(steps=cfg.steps, guidance=cfg.guidance)

    def gen(prompt: str | None, seed: int) -> np.ndarray:
        return generate(model, cfg.frames, GenOptions(seed=seed, sampler=sampler, prompt=prompt))

    size = f"{model.size.width}x{model.size.height}"
    scores, prompts, _ = measure(gen, size, cfg)
    return TextAdherenceResult(
        model=os.path.abspath(run), model_id=config.get("save_id"), world=WORLD, size=size,
        prompts=len(prompts), frames=cfg.frames, seed=cfg.seed, sampler_steps=cfg.steps, guidance=cfg.guidance,
        attributes={a: list(c) for a, c in ATTRIBUTES.items()}, classifier_steps=cfg.classifier.steps,
        examples=[[p.caption, p.paraphrase] for p in prompts[:3]], seed_overlap=overlap, **scores,
    )  # fmt: skip
