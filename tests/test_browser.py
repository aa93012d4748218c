"""The player page in a real browser (Debian's Chromium through Playwright): frames arrive and
change while W is held, the HUD counts FPS, the touch joystick and a (stubbed) gamepad send input.

Skips when /usr/bin/chromium is missing, unless REVERIE_REQUIRE_BROWSER=1 (CI), where it fails.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reverie.serve.app import BackgroundServer, ServeConfig, create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
# A gamepad the test moves by writing window.__pad (the page polls navigator.getGamepads()).
FAKE_GAMEPAD = """
window.__pad = { axes: [0, 0, 0, 0], buttons: Array.from({ length: 17 }, () => ({ pressed: false, value: 0 })) };
navigator.getGamepads = () => [{ id: "test pad", index: 0, connected: true, mapping: "standard",
                                 axes: window.__pad.axes, buttons: window.__pad.buttons, timestamp: 0 }];
"""


def _require_browser() -> Any:
    required = os.environ.get("REVERIE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("REVERIE_REQUIRE_BROWSER=1 but playwright is not installed (pip install playwright)")
        pytest.skip("playwright is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"REVERIE_REQUIRE_BROWSER=1 but {CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (make browser)")
    return sync_playwright


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser_and_url(chromium: Any) -> Iterator[tuple[Any, str]]:
    app = create_app(ServeConfig(world="reverie/Dungeon-v0", size="64x64", fps=30))
    with BackgroundServer(app) as url:
        yield chromium, url


def _stats(page: Any) -> dict[str, Any]:
    return page.evaluate("() => ({...window.__reverie, session: null})")


def _consumed(page: Any, seq: int) -> None:
    """Wait until a frame header says the server consumed input `seq`."""
    page.wait_for_function(f"() => window.__reverie.lastHeader && window.__reverie.lastHeader.seq >= {seq}")


def test_play_with_keyboard_and_read_the_hud(browser_and_url: tuple[Any, str], tmp_path: Path) -> None:
    browser, url = browser_and_url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(FAKE_GAMEPAD)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.wait_for_function("() => window.__reverie.framesDrawn > 5", timeout=30000)
    help_line = page.inner_text("#help")  # the Dungeon's own keys, read from the server's bindings
    assert all(k in help_line for k in ("W/↑ forward", "Q strafe_left", "W+A forward_left")), help_line
    assert "fire" not in help_line
    before = page.evaluate("() => document.getElementById('view-dream').toDataURL()")
    page.keyboard.down("w")
    page.wait_for_function(
        "() => window.__reverie.lastInput && window.__reverie.lastInput.keys.includes('keyw')"
    )
    _consumed(page, _stats(page)["lastInput"]["seq"])
    page.wait_for_timeout(500)  # walk a little
    after = page.evaluate("() => document.getElementById('view-dream').toDataURL()")
    page.keyboard.up("w")
    assert after != before, "holding W did not change the picture"
    page.wait_for_function("() => window.__reverie.fps > 0")
    hud = page.inner_text("#hud")
    fps = int(re.match(r"(\d+) fps", hud).group(1))  # type: ignore[union-attr]
    assert fps > 0 and "ms" in hud
    stats = _stats(page)
    assert stats["latencyMs"] is not None and stats["latencyMs"] > 0
    assert stats["framesDrawn"] > 5 and stats["status"] == "live"

    # Gamepad: the left stick pushed forward is read on the next animation frame.
    page.evaluate("() => { window.__pad.axes[1] = -1; }")
    page.wait_for_function("() => window.__reverie.gamepadInputs > 0")
    pad_input = _stats(page)["lastInput"]
    assert pad_input["source"] == "gamepad" and pad_input["axes"]["forward"] == 1
    _consumed(page, pad_input["seq"])
    page.evaluate(
        "() => { window.__pad.axes[1] = 0; window.__pad.buttons[5] = { pressed: true, value: 1 }; }"
    )
    page.wait_for_function("() => window.__reverie.lastInput.keys.includes('keye')")  # RB strafes right
    page.screenshot(path=str(tmp_path / "player.png"))

    # Record a second of play and download it (MP4 where the browser records MP4, else WebM).
    page.click("#record")
    page.wait_for_timeout(1200)
    with page.expect_download() as dl:
        page.click("#record")
    video = tmp_path / dl.value.suggested_filename
    dl.value.save_as(video)
    kind = _stats(page)["recordingType"]
    assert video.suffix == (".mp4" if kind.startswith("video/mp4") else ".webm")
    import av

    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) > 5 and frames[-1].shape[0] >= 256  # recorded upscaled, not at 64x64

    # A prompt restarts the world; the simulator says it noted the prompt but cannot use it.
    page.fill("#prompt", "a flooded crypt")
    page.press("#prompt", "Enter")
    page.wait_for_function("() => document.getElementById('notice').textContent.includes('prompt')")
    page.wait_for_timeout(1100)  # restarts are limited to one a second

    # An image upload is scaled down in the page and sent; the simulator notes it too.
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (30, 90, 200)).save(buf, format="PNG")
    page.fill("#prompt", "")
    page.set_input_files(
        "#image", files=[{"name": "start.png", "mimeType": "image/png", "buffer": buf.getvalue()}]
    )
    page.wait_for_function("() => document.getElementById('notice').textContent.includes('image')")
    assert not [e for e in _stats(page)["errors"] if e["code"] == "bad_image"]
    assert not errors, errors
    page.close()


def test_touch_joystick_sends_an_action(browser_and_url: tuple[Any, str], tmp_path: Path) -> None:
    browser, url = browser_and_url
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = ctx.new_page()
    page.goto(url + "/")
    page.wait_for_function("() => window.__reverie.framesDrawn > 2", timeout=30000)
    assert page.is_visible("#stick"), "the touch joystick is shown on a touch device"
    box = page.locator("#stick").bounding_box()
    assert box is not None
    # A touch near the top of the joystick: forward.
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + 6)
    page.wait_for_function("() => window.__reverie.touchInputs >= 2")  # press and release
    inputs = [i for i in _stats(page)["inputs"] if i["source"] == "touch"]
    pushed = max(inputs, key=lambda i: i["axes"]["forward"])
    assert pushed["axes"]["forward"] > 0.5 and abs(pushed["axes"]["turn"]) < 0.3
    assert inputs[-1]["axes"]["forward"] == 0  # released: the stick springs back
    _consumed(page, inputs[-1]["seq"])
    page.screenshot(path=str(tmp_path / "player_phone.png"))
    ctx.close()


REAL = "() => document.getElementById('view-real').toDataURL()"
NO_FIRE_SEED = 11  # the start walk of this Breakout seed holds noop throughout (fire, seeds 0, 3, 5)


def test_breakout_fires_from_keyboard_and_gamepad_and_each_pane_has_its_own_hud(
    chromium: Any, tmp_path: Path
) -> None:
    """A game nobody here wrote: Breakout's FIRE serves the ball, which only FIRE does."""
    pytest.importorskip("ale_py")
    app = create_app(ServeConfig(world="ALE/Breakout-v5", size="64x64", fps=30))
    with BackgroundServer(app) as url:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(FAKE_GAMEPAD)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_function("() => window.__reverie.framesDrawn > 2", timeout=60000)
        help_line = page.inner_text("#help")
        assert "Space fire" in help_line and "A/← left" in help_line and "D/→ right" in help_line, help_line
        assert "strafe" not in help_line and "forward" not in help_line  # not the Dungeon's keys
        touch = page.eval_on_selector_all(
            "#touch-buttons .tb", "bs => bs.map(b => [b.textContent, b.dataset.key])"
        )
        assert touch == [["fire", "space"]]

        page.click("#real-toggle")
        page.wait_for_function("() => window.__reverie.headers[1] !== null", timeout=30000)
        # A session starts 8 frames into a seeded explore walk; this seed's walk never fires.
        page.evaluate(f"() => restart({{ seed: {NO_FIRE_SEED} }})")
        _consumed(page, page.evaluate("() => seq"))
        page.wait_for_function(f"() => window.__reverie.headers[1].seq >= {page.evaluate('() => seq')}")
        page.wait_for_timeout(500)
        page.evaluate(f"() => {{ window.__served = ({REAL})(); }}")
        page.wait_for_timeout(500)
        assert page.evaluate(f"() => ({REAL})() === window.__served"), "the ball moved without FIRE"
        page.keyboard.down("Space")
        page.wait_for_function("() => window.__reverie.lastInput.keys.includes('space')")
        _consumed(page, _stats(page)["lastInput"]["seq"])
        page.keyboard.up("Space")
        page.wait_for_function(f"() => ({REAL})() !== window.__served", timeout=10000)  # the ball is in play

        # Each pane's HUD shows its own generation time, read in one tick with the headers.
        hud, hud_real, headers = page.evaluate(
            "() => { renderHud(); return [document.getElementById('hud').textContent, "
            "document.getElementById('hud-real').textContent, window.__reverie.headers]; }"
        )
        assert f"gen {headers[0]['genUs'] / 1000:.1f} ms" in hud and f"#{headers[0]['index']}" in hud
        assert hud_real == f"gen {headers[1]['genUs'] / 1000:.1f} ms · #{headers[1]['index']}"

        # The gamepad's A button is this world's FIRE.
        page.evaluate("() => { window.__pad.buttons[0] = { pressed: true, value: 1 }; }")
        page.wait_for_function(
            "() => window.__reverie.lastInput.source === 'gamepad' && window.__reverie.lastInput.keys.includes('space')"
        )
        page.screenshot(path=str(tmp_path / "breakout.png"))
        assert not errors, errors
        page.close()


def _latent_code_app(tmp_path: Path) -> Any:
    """The player's app on a tiny model whose actions are unnamed latent codes c1..c4."""
    from test_key_binding import SPEC
    from test_model_backend import make_tiny_run

    from reverie.engine.model_backend import ModelConfig
    from reverie.engine.views import make_backends

    run = make_tiny_run(tmp_path, spec=SPEC, world=None)
    backends = make_backends(run, "ignored", "64x64", model_cfg=ModelConfig(steps=1))
    return create_app(ServeConfig(model=run, fps=30), backends)


def test_the_session_waits_for_every_script(chromium: Any, tmp_path: Path) -> None:
    """On a busy machine the session can be granted before the page's later scripts have loaded:
    the page must not go live until touch.js and bind.js have run (controls and bind panel built)."""
    import time

    with BackgroundServer(_latent_code_app(tmp_path)) as url:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        def slow(route: Any) -> None:  # the browser goes on (the WebSocket too) while this waits
            time.sleep(1.5)
            route.continue_()

        page.route(re.compile(r".*/static/(touch|bind)\.js$"), slow)
        page.goto(url)
        page.wait_for_function("() => window.__reverie.status === 'live'")
        assert not errors, errors
        assert page.evaluate("document.querySelectorAll('#bind select').length") == 4
        assert page.evaluate("window.__reverie.controls !== undefined")
        page.close()
    assert not errors, errors


def test_the_bind_panel_previews_each_latent_code(chromium: Any, tmp_path: Path) -> None:
    with BackgroundServer(_latent_code_app(tmp_path)) as url:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_function("() => window.__reverie.status === 'live'")
        page.wait_for_function("() => document.querySelectorAll('#bind select').length === 4")  # c1..c4
        assert page.is_visible("#bind")
        # a busy server may answer "rate_limited" or "no_preview": click again, as a user would
        for _ in range(3):
            page.click("#bind-preview")
            page.wait_for_function(
                "() => window.__reverie.previews === 4 || window.__reverie.errors.length > 0", timeout=30_000
            )
            if page.evaluate("window.__reverie.previews") == 4:
                break
            page.evaluate("window.__reverie.errors = []")
            page.wait_for_timeout(1100)
        assert page.evaluate("window.__reverie.previews") == 4
        image = page.eval_on_selector(".bind-preview[data-code='c1']", "s => s.style.backgroundImage")
        assert image.startswith('url("data:image/jpeg;base64,')
        page.screenshot(path=str(tmp_path / "bind.png"))
        page.close()
    assert not errors, errors
