"""Text adherence: the attribute judge learns real scenes, paraphrases are new words for the same scene,
a generator that shows the asked-for scene scores high while a text-blind one scores at most chance,
and `reverie eval-text` runs end to end on a tiny untrained model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from test_eval_rollout import make_tiny_runs

from reverie.eval.attributes import (
    ATTRIBUTES,
    AttributeClassifier,
    ClassifierConfig,
    SceneClip,
    accuracy,
    labels_of,
    stack_frames,
    train_classifier,
    walk_scenes,
)
from reverie.eval.paraphrase import PARAPHRASES, paraphrase, read_attributes
from reverie.eval.text_adherence import Prompt, chance_levels, clip_answer, make_prompts, score_prompts
from reverie.worlds.dungeon import PHRASES

SIZE = "32x32"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def train_clips() -> list[SceneClip]:
    return walk_scenes(SIZE, list(range(3_000_000, 3_000_016)), steps=24, stride=3)


@pytest.fixture(scope="module")
def held_clips() -> list[SceneClip]:
    return walk_scenes(SIZE, [3_100_000, 3_100_001], steps=24, stride=3)


@pytest.fixture(scope="module")
def judge(train_clips: list[SceneClip]) -> AttributeClassifier:
    frames, labels = stack_frames(train_clips)
    return train_classifier(frames, labels, ClassifierConfig(width=16, steps=300, seed=0))


def test_walk_is_deterministic_and_labelled_by_the_scene(held_clips: list[SceneClip]) -> None:
    again = walk_scenes(SIZE, [3_100_000], steps=24, stride=3)
    first = [c for c in held_clips if c.seed == 3_100_000]
    assert [c.region for c in again] == [c.region for c in first]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(again, first))
    assert {c.scene["kind"] for c in held_clips} == {"room", "corridor"}  # every region is visited
    for c in held_clips:
        assert c.frames.shape[1:] == (32, 32, 3) and c.frames.dtype == np.uint8
        assert [ATTRIBUTES[a][i] for a, i in zip(ATTRIBUTES, c.labels)] == [c.scene[a] for a in ATTRIBUTES]


@pytest.mark.slow  # its judge trains for 80 s on one core: `make test-all` runs it
def test_classifier_learns_real_attributes_well_above_chance(
    judge: AttributeClassifier, held_clips: list[SceneClip]
) -> None:
    frames, labels = stack_frames(held_clips)  # other seeds than the judge learnt from
    acc = accuracy(judge.predict(frames), labels)
    majority = {a: np.bincount(labels[:, i]).max() / len(labels) for i, a in enumerate(ATTRIBUTES)}
    assert acc["color"] > majority["color"] + 0.25, (acc, majority)
    assert acc["mean"] > np.mean(list(majority.values())) + 0.1, (acc, majority)


def test_paraphrase_vocabulary_is_new_and_covers_every_class() -> None:
    for slot, classes in ATTRIBUTES.items():
        ours = PARAPHRASES.words[slot]
        assert set(ours) == set(classes)  # every class can be asked for
        world = {w for ws in PHRASES.words.get(slot, {}).values() for w in ws} | set(classes)
        assert not world.intersection(w for ws in ours.values() for w in ws), slot
        words = [w for ws in ours.values() for w in ws]
        assert len(words) == len(set(words))  # no synonym names two classes


def caption_language() -> list[re.Pattern[str]]:
    """The world Phrasebook's captions exactly, as one regex per template (slots: any of its words)."""

    def words(slot: str) -> str:
        ws = {w for v in PHRASES.words.get(slot, {}).values() for w in v} or set(ATTRIBUTES[slot])
        return "(?:" + "|".join(re.escape(w) for w in sorted(ws, key=len, reverse=True)) + ")"

    def literal(text: str) -> str:  # compose() writes "an" before a vowel
        return re.sub(r"\b([Aa]) ", r"\1n? ", re.escape(text).replace("\\ ", " "))

    slot = {s: words(s) for s in ("light", "color", "material", "kind", "size")}
    slot["objects"] = f"{words('objects')}(?:(?:, | and ){words('objects')})*"
    out = []
    for template in PHRASES.templates:
        parts = re.split(r"(\{\w+\}|\[|\])", template)
        pattern = "".join(
            slot[p[1:-1]] if p.startswith("{") else {"[": "(?:", "]": ")?"}.get(p, literal(p)) for p in parts
        )
        out.append(re.compile(pattern))
    return out


def test_paraphrases_are_never_a_caption_and_keep_the_attributes(held_clips: list[SceneClip]) -> None:
    language = caption_language()
    rng = np.random.default_rng(0)
    for clip in held_clips:
        assert any(p.fullmatch(clip.caption) for p in language), clip.caption  # the regexes are right
        for _ in range(5):
            text = paraphrase(clip.scene, rng)
            assert not any(p.fullmatch(text) for p in language), text
            assert read_attributes(text) == {a: clip.scene[a] for a in ("kind", "material", "color", "light")}
    with pytest.raises(ValueError, match="light"):
        paraphrase({"kind": "room", "material": "stone", "color": "red", "light": "neon"}, rng)


@pytest.mark.slow  # shares that judge: `make test-all` runs it
def test_perfect_generator_scores_high_text_blind_one_at_most_chance(
    judge: AttributeClassifier, held_clips: list[SceneClip], train_clips: list[SceneClip]
) -> None:
    prompts = make_prompts(held_clips, 20, seed=7)
    assert [p.gen_seed for p in prompts] == list(range(7, 27))
    assert len({(p.clip.seed, p.clip.region) for p in prompts}) == 20
    # A perfect model: the text's scene rendered by the simulator (the prompt region's real frames).
    scene_of = {p.caption: p.clip.frames for p in prompts} | {p.paraphrase: p.clip.frames for p in prompts}
    fixed = train_clips[0].frames  # what a text-blind model draws: always the same scene
    calls: list[tuple[str | None, int]] = []

    def gen(text: str | None, seed: int) -> np.ndarray:
        calls.append((text, seed))
        return scene_of[text] if text is not None else fixed

    held = score_prompts(gen, judge, prompts, lambda p: p.caption)
    para = score_prompts(gen, judge, prompts, lambda p: p.paraphrase)
    null = score_prompts(gen, judge, prompts, lambda p: None)
    perfect = accuracy(np.stack([clip_answer(judge, p.clip.frames) for p in prompts]), labels(prompts))
    majority, uniform = chance_levels(prompts)
    assert held == para  # same frames, same answers: the text form changes nothing here
    assert {k: v for k, v in held.items() if k != "mean_stderr"} == perfect
    assert 0.0 < held["mean_stderr"] < 0.2
    # One fixed answer per attribute scores at most the majority-class rate: chance, by construction.
    assert all(null[a] <= majority[a] + 1e-9 for a in ATTRIBUTES)
    assert held["mean"] > majority["mean"] + 0.1 and held["mean"] > null["mean"] + 0.1, (held, null, majority)
    assert uniform["kind"] == 0.5 and uniform["color"] == 1 / 8
    # every prompt set generates with the same seeds, so the sets differ only in their text
    seeds = [s for _, s in calls]
    assert seeds[:20] == seeds[20:40] == seeds[40:] == [p.gen_seed for p in prompts]


def labels(prompts: list[Prompt]) -> np.ndarray:
    return np.stack([labels_of(p.clip.scene) for p in prompts])


def test_cli_eval_text_on_a_tiny_untrained_model(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import reverie.cli.eval  # noqa: F401  (attaches the command)
    from reverie.cli.apps import app
    from reverie.errors import ReverieError

    run = make_tiny_runs(tmp_path, 9)
    args = ["eval-text", "--model", str(run), "--prompts", "3", "--frames", "2", "--classifier-seeds", "1"]
    args += ["--classifier-steps", "3"]
    res = CliRunner().invoke(app, [*args, "--allow-overlap", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert (
        out["prompts"] == 3
        and out["size"] == SIZE
        and out["attributes"]["light"] == list(ATTRIBUTES["light"])
    )
    for key in ("held_out", "paraphrase", "null_prompt", "chance_majority", "ceiling_real_frames"):
        assert set(out[key]) - {"mean_stderr"} == {*ATTRIBUTES, "mean"}
        assert all(0.0 <= v <= 1.0 for v in out[key].values())
    assert all(len(pair) == 2 and pair[0] != pair[1] for pair in out["examples"])
    # the model's dataset is unknown here: refused without --allow-overlap, before any work
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, ReverieError) and "allow-overlap" in str(res.exception)


def test_cli_refuses_a_model_of_another_world(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import reverie.cli.eval  # noqa: F401
    from reverie.cli.apps import app
    from reverie.errors import ReverieError

    run = make_tiny_runs(tmp_path, 9, world="reverie/Drive-v0")
    res = CliRunner().invoke(app, ["eval-text", "--model", str(run), "--allow-overlap"])
    assert isinstance(res.exception, ReverieError) and "Dungeon" in str(res.exception)
