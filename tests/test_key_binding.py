"""Keys for latent action codes: the saved binding, its refusals, the mapper and `reverie bind-keys`."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reverie.cli import app
from reverie.engine.controls import InputMapper, InputState
from reverie.engine.key_binding import KEYS_FILE, apply_binding, read_binding, write_binding
from reverie.errors import ReverieError

SPEC: dict[str, Any] = {"type": "discrete", "n": 5, "names": ["noop", "c1", "c2", "c3", "c4"]}


def _run(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text(json.dumps({"kind": "dynamics", "data": {"action_spec": SPEC}}))
    return tmp_path


def test_round_trip_and_clear(tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert read_binding(run, SPEC) == {}
    write_binding(run, SPEC, {"c2": "forward", "c4": "turn_left"})
    assert read_binding(run, SPEC) == {"c2": "forward", "c4": "turn_left"}
    assert [p.name for p in run.iterdir() if p.name.startswith(".keys.")] == []  # no temp file left
    write_binding(run, SPEC, {})
    assert not (run / KEYS_FILE).exists()


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        ({"c9": "forward"}, "no code 'c9'; accepted: c1, c2, c3, c4"),
        ({"noop": "forward"}, "no code 'noop'"),
        ({"c1": "fly"}, "'fly' is not an action; accepted: forward, back"),
        ({"c1": "forward", "c2": "forward"}, "forward is bound twice (c1 and c2)"),
        (["c1", "forward"], "expected an object"),
    ],
)
def test_refusals_name_what_is_wrong(tmp_path: Path, binding: Any, message: str) -> None:
    run = _run(tmp_path)
    with pytest.raises(ReverieError, match=message.replace("(", r"\(").replace(")", r"\)")):
        write_binding(run, SPEC, binding)
    (run / KEYS_FILE).write_text(json.dumps(binding))  # a hand-edited file is refused the same way
    with pytest.raises(ReverieError, match=str(run / KEYS_FILE)):
        read_binding(run, SPEC)


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEYS_FILE).write_text("{c1: forward")
    with pytest.raises(ReverieError, match="not JSON"):
        read_binding(tmp_path, SPEC)


def test_bound_codes_get_the_movement_keys_and_the_rest_keep_numbers() -> None:
    unbound = InputMapper(SPEC)
    assert unbound(InputState(keys=frozenset({"keyw"}))) == 0  # no code means forward yet
    mapper = InputMapper(apply_binding(SPEC, {"c3": "forward", "c1": "turn_right"}))
    assert mapper(InputState(keys=frozenset({"keyw"}))) == 3
    assert mapper(InputState(keys=frozenset({"arrowup"}))) == 3
    assert mapper(InputState(keys=frozenset({"keyd"}))) == 1
    assert mapper(InputState()) == 0
    keys = {b.name: b.keys for b in mapper.bindings}
    assert keys["forward"] == ("keyw",) and keys["turn_right"] == ("keyd",)
    assert keys["c2"] == ("digit1",) and keys["c4"] == ("digit2",)
    assert mapper(InputState(keys=frozenset({"digit2"}))) == 4


def test_cli_binds_shows_and_clears(tmp_path: Path) -> None:
    run = _run(tmp_path)
    cli = CliRunner()
    out = cli.invoke(app, ["bind-keys", "--model", str(run), "c1=forward", "c2=back"])
    assert out.exit_code == 0, out.output
    out = cli.invoke(app, ["bind-keys", "--model", str(run), "c3=turn_left"])  # merges
    assert json.loads((run / KEYS_FILE).read_text()) == {"c1": "forward", "c2": "back", "c3": "turn_left"}
    out = cli.invoke(app, ["bind-keys", "--model", str(run), "--show"])
    assert "c3\tturn_left" in out.output and "c4\t(number key)" in out.output
    out = cli.invoke(app, ["bind-keys", "--model", str(run), "c4=forward"])
    assert out.exit_code != 0 and json.loads((run / KEYS_FILE).read_text())["c1"] == "forward"
    out = cli.invoke(app, ["bind-keys", "--model", str(run), "--clear"])
    assert out.exit_code == 0 and not (run / KEYS_FILE).exists()


def test_the_engine_loads_the_binding_with_the_model(tmp_path: Path) -> None:
    from test_model_backend import make_tiny_run

    from reverie.engine.model_backend import ModelBackend

    run = make_tiny_run(tmp_path, spec=SPEC, world=None)
    assert ModelBackend(run).spec["names"] == SPEC["names"]
    write_binding(run, SPEC, {"c2": "forward"})
    spec = ModelBackend(run).spec
    assert spec["names"] == ["noop", "c1", "forward", "c3", "c4"] and spec["codes"] == SPEC["names"]
    assert InputMapper(spec)(InputState(keys=frozenset({"keyw"}))) == 2
    (Path(run) / KEYS_FILE).write_text(json.dumps({"c7": "forward"}))
    with pytest.raises(ReverieError, match="no code 'c7'"):
        ModelBackend(run)


def test_the_bind_message_is_checked_for_shape() -> None:
    from reverie.serve import protocol as P

    m = P.parse(json.dumps({"type": "bind", "binding": {"c1": "forward", "c2": "back"}}))
    assert m.type == "bind" and dict(m.binding) == {"c1": "forward", "c2": "back"}
    for bad in (
        [["c1", "forward"]],
        {"c1": 3},
        {"": "forward"},
        {"c1": "x" * 33},
        {f"c{i}": "x" for i in range(17)},
    ):
        with pytest.raises(P.ProtocolError) as e:
            P.parse(json.dumps({"type": "bind", "binding": bad}))
        assert e.value.code == "bad_message"


@pytest.mark.parametrize("allow", [False, True])
def test_the_server_writes_the_binding_only_when_allowed(tmp_path: Path, allow: bool) -> None:
    from test_model_backend import make_tiny_run

    from reverie.engine.model_backend import ModelConfig
    from reverie.engine.views import make_backends
    from reverie.serve.app import BackgroundServer, ServeConfig, create_app
    from reverie.serve.client import PlayClient

    run = make_tiny_run(tmp_path, spec=SPEC, world=None)
    backends = make_backends(run, "ignored", "64x64", model_cfg=ModelConfig(steps=1))
    app = create_app(ServeConfig(model=run, fps=30, allow_bind=allow), backends)
    with BackgroundServer(app) as url, PlayClient(url) as c:
        c.start(seed=1, views=["dream"])
        c.send({"type": "bind", "binding": {"c2": "forward"}})
        first = c.wait_for("bound" if allow else "error")
        time.sleep(0.3)  # the server answers refusals at most every 0.2 s
        c.send({"type": "bind", "binding": {"c7": "forward"}})  # no such code: refused either way
        second = c.wait_for("error")
    if allow:
        assert first["binding"] == {"c2": "forward"} and read_binding(run, SPEC) == {"c2": "forward"}
        assert second["code"] == "bad_binding" and "no code 'c7'" in second["message"]
    else:
        assert first["code"] == second["code"] == "bind_disabled" and "reverie bind-keys" in first["message"]
        assert not (Path(run) / KEYS_FILE).exists()


def test_previews_show_each_code_from_the_session_without_touching_it(tmp_path: Path) -> None:
    import numpy as np
    from test_model_backend import make_tiny_run

    from reverie.engine.model_backend import PREVIEW_FRAMES, ModelBackend

    run = make_tiny_run(tmp_path, spec=SPEC, world=None)
    a, b = ModelBackend(run), ModelBackend(run)
    for backend in (a, b):
        backend.reset(1, 7)
        backend.step([1], [2])
    previews = a.previews(1)
    assert list(previews) == SPEC["names"]  # the codes as trained, whatever keys they are bound to
    assert all(v.shape == (PREVIEW_FRAMES, 64, 64, 3) and v.dtype == np.uint8 for v in previews.values())
    assert not np.array_equal(previews["c1"], previews["c2"])  # the same noise: only the code differs
    assert np.array_equal(a.previews(1)["c3"], previews["c3"])  # seeded: the same strip again
    # The session plays on exactly as if no preview had been taken.
    for t in range(3):
        assert np.array_equal(a.step([1], [t]).pop().frame, b.step([1], [t]).pop().frame)
    with pytest.raises(ReverieError, match="no session 9"):
        a.previews(9)


def test_the_server_sends_previews_to_the_bind_panel(tmp_path: Path) -> None:
    from test_model_backend import make_tiny_run

    from reverie.engine import encode
    from reverie.engine.model_backend import PREVIEW_FRAMES, ModelConfig
    from reverie.engine.views import make_backends
    from reverie.serve.app import BackgroundServer, ServeConfig, create_app
    from reverie.serve.client import PlayClient

    run = make_tiny_run(tmp_path, spec=SPEC, world=None)
    backends = make_backends(run, "ignored", "64x64", model_cfg=ModelConfig(steps=1))
    app = create_app(ServeConfig(model=run, fps=30), backends)
    with BackgroundServer(app) as url, PlayClient(url) as c:
        c.start(seed=1, views=["dream"])
        c.next_frame()
        c.send({"type": "preview"})
        c.send({"type": "preview"})  # while the first is made: refused, the session plays on
        assert c.wait_for("error")["code"] == "rate_limited"
        c.next_frame()
        m = c.wait_for("previews", timeout=30)
        assert m["frames"] == PREVIEW_FRAMES and list(m["strips"]) == SPEC["names"]
        strip = encode.decode(base64.b64decode(m["strips"]["c1"].partition(",")[2]))
        assert strip.shape == (64, 64 * PREVIEW_FRAMES, 3)


def test_a_simulator_has_no_previews() -> None:
    from reverie.serve.app import BackgroundServer, ServeConfig, create_app
    from reverie.serve.client import PlayClient

    app = create_app(ServeConfig(world="reverie/Dungeon-v0", size="32x32"))
    with BackgroundServer(app) as url, PlayClient(url) as c:
        c.start(seed=1)
        c.send({"type": "preview"})
        e = c.wait_for("error")
        assert e["code"] == "no_preview" and "--model" in e["message"]
