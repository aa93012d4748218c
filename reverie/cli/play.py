"""`reverie play` (serve a world to the browser) and `reverie bench engine`."""

from __future__ import annotations

import json

import typer

from reverie.cli.apps import app, bench_app
from reverie.errors import ReverieError
from reverie.worlds import DEFAULT_WORLD


@app.command("play")
def play_cmd(
    model: str | None = typer.Option(
        None,
        "--model",
        help="World model to play: a run dir, or `default` (the shipped model; used when "
        "neither --model nor --world is given).",
    ),
    world: str | None = typer.Option(
        None, "--world", help="Play this world's real simulator instead (see `reverie worlds`)."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind; loopback unless told otherwise."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    max_sessions: int = typer.Option(4, "--max-sessions", min=1, help="Players at once; the rest queue."),
    fps: float = typer.Option(30.0, "--fps", min=1.0, max=120.0, help="Frame clock rate."),
    size: str = typer.Option("64x64", "--size", help="Frame size WIDTHxHEIGHT."),
    quality: int = typer.Option(85, "--quality", min=1, max=100, help="JPEG quality."),
    codec: str = typer.Option("jpeg", "--codec", help="Frame codec: jpeg or webp (method 0)."),
    continuous: bool = typer.Option(
        False, "--continuous", help="Play the world's continuous (analog) actions."
    ),
    idle_timeout: float = typer.Option(
        180.0, "--idle-timeout", min=1.0, help="Seconds without input that end a session."
    ),
    time_limit: float = typer.Option(
        0.0, "--time-limit", min=0.0, help="Seconds a session may last (0: no limit)."
    ),
    open_browser: bool = typer.Option(False, "--open", help="Open the player in the default browser."),
    steps: int | None = typer.Option(
        None,
        "--steps",
        min=1,
        max=8,
        help="With --model: sampling steps per frame (default: the model's own).",
    ),
    threads: int = typer.Option(
        0, "--threads", min=0, help="With --model: torch threads (0: the default, 1)."
    ),
    start_caption: bool | None = typer.Option(
        None,
        "--start-caption/--no-start-caption",
        help="With --model: tell a dream started with no image and no prompt the world's caption of its "
        "real start as its prompt (closer at first, further after minutes: docs/bakeoff.md), or play it "
        "with no text. Default: the engine's (off).",
        show_default=False,
    ),
    allow_origin: list[str] = typer.Option(
        [],
        "--allow-origin",
        help="Also let pages of this origin (scheme://host[:port], or * for any) play; repeatable. "
        "By default only the server's own page may, under an IP address or localhost.",
    ),
    max_per_address: int = typer.Option(
        32, "--max-per-address", min=1, help="Open connections allowed from one address."
    ),
    session_memory: str = typer.Option(
        "",
        "--session-memory",
        help="JSON file where the server remembers how long sessions lasted, so a restarted server "
        "tells the first in line a measured wait, not a guess (default: "
        "$XDG_CACHE_HOME/reverie/sessions.json, i.e. ~/.cache/reverie/sessions.json; `none`: keep nothing).",
    ),
    pipeline: str = typer.Option(
        "auto",
        "--pipeline",
        help="With a model: decode each tick's frames on a second thread beside the next tick's model "
        "pass, so a tick costs the longer of the two instead of their sum (a frame comes ~10 ms later). "
        "auto: where the step takes over 70% of the frame period (e.g. two players on a CPU without "
        "bf16 math) and it pays; on; off.",
    ),
    allow_bind: bool = typer.Option(
        False,
        "--allow-bind",
        help="Let the page save a key binding for the model's latent action codes (writes "
        "MODEL/keys.json; off by default: a public page must not write files).",
    ),
) -> None:
    """Play a world live in the browser: keyboard, gamepad or phone.

    With no options this plays the shipped default world model (a learned Dungeon). With --model, a
    model you trained (its world, size and actions come from the run); with --world, a real simulator.

    Example:  reverie play --open            (the default model)
    Example:  reverie play --world reverie/Drive-v0 --open
    """
    import threading
    import webbrowser

    import uvicorn

    from reverie.engine.views import make_backends
    from reverie.models.shipped import DEFAULT_MODEL
    from reverie.serve.app import ServeConfig, create_app, uvicorn_options
    from reverie.serve.metrics import setup_logging
    from reverie.serve.origin import normalize_origin
    from reverie.serve.session_memory import default_path
    from reverie.sizes import parse_size

    if model is not None and world is not None:
        raise ReverieError("pass --model (a world model) or --world (a simulator), not both")
    try:
        origins = tuple(normalize_origin(o) for o in allow_origin)
    except ValueError as e:
        raise ReverieError(f"--allow-origin: {e}") from None
    model, world = _model_or_world(model, world)
    model_cfg = None
    if model is not None:  # torch is imported only for a model
        from reverie.engine.model_backend import ModelConfig

        model_cfg = ModelConfig(
            steps=steps, threads=threads or None,
            start_caption=ModelConfig.start_caption if start_caption is None else start_caption,
        )  # fmt: skip
    backends = make_backends(model, world, size, continuous, model_cfg)
    if model is not None:
        world, size = backends["dream"].world, str(backends["dream"].size)
    cfg = ServeConfig(
        world=world, model=model, size=str(parse_size(size)), continuous=continuous, fps=fps,
        quality=quality, codec=codec, max_sessions=max_sessions, idle_timeout_s=idle_timeout,
        time_limit_s=time_limit or None, allow_origins=origins, max_per_address=max_per_address,
        hosts=(host,) if host not in ("0.0.0.0", "::") else (), allow_bind=allow_bind,
        session_memory=None if session_memory.lower() == "none" else session_memory or str(default_path()),
        pipeline=pipeline,
    )  # fmt: skip
    asgi = create_app(cfg, backends)  # the world is built first: a bad --world fails before serving
    setup_logging()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    what = f"the {'default ' if model == DEFAULT_MODEL else ''}world model of {world}" if model else world
    if model:  # the precision decides the frame rate: say which one this CPU plays at
        bf16 = str(getattr(backends["dream"], "dtype", "")) == "torch.bfloat16"
        what += f" ({'bf16' if bf16 else 'fp32: no bf16 math on this CPU'})"
    typer.echo(f"reverie: playing {what} at {url}  (Ctrl-C to stop)")
    if open_browser:  # after a moment, so the server is listening when the page asks
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(asgi, host=host, port=port, **uvicorn_options(asgi))


def _model_or_world(model: str | None, world: str | None) -> tuple[str | None, str]:
    """Neither given: the shipped model (the Dungeon simulator where no model is installed)."""
    from reverie.models.shipped import DEFAULT_MODEL, default_model_available

    if model is None and world is None:
        if default_model_available():
            return DEFAULT_MODEL, DEFAULT_WORLD
        typer.echo("reverie: no default model is installed; using the Dungeon simulator", err=True)
    return model, world or DEFAULT_WORLD


@bench_app.command("engine")
def bench_engine_cmd(
    world: str | None = typer.Option(
        None, "--world", help="Time this world's simulator instead of a model (see `reverie worlds`)."
    ),
    frames: int = typer.Option(1000, "--frames", min=10, help="Frames per session to time (after warm-up)."),
    sessions: int = typer.Option(1, "--sessions", min=1, help="Sessions stepped together in each tick."),
    size: str = typer.Option("64x64", "--size", help="Frame size WIDTHxHEIGHT."),
    quality: int = typer.Option(85, "--quality", min=1, max=100, help="JPEG quality."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first session (the others count up)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
    model: str | None = typer.Option(
        None,
        "--model",
        help="World model to time: a run dir, a model package or default (the shipped model; used "
        "when neither --model nor --world is given).",
    ),
    steps: int | None = typer.Option(
        None,
        "--steps",
        min=1,
        max=8,
        help="With --model: sampling steps per frame (default: the model's own).",
    ),
    threads: int = typer.Option(
        0, "--threads", min=0, help="With --model: torch threads (0: the default, 1)."
    ),
    load: bool = typer.Option(
        False,
        "--load",
        help="Time the ticks again while another process keeps one core busy; adds loaded_fps, "
        "loaded_frame_ms_p50/p99 and loaded_slowdown (loaded over quiet frame time).",
    ),
    pipeline: str = typer.Option(
        "auto",
        "--pipeline",
        help="With --model: decode each tick's frames on a second thread beside the next tick's model "
        "pass, so a tick costs the longer of the two instead of their sum (a frame comes ~10 ms later). "
        "auto: where the step takes over 70% of the frame period (e.g. two players on a CPU without "
        "bf16 math) and it pays; on; off.",
    ),
    joins: int = typer.Option(
        0,
        "--joins",
        min=0,
        help="A guest player joins this many times during the timed ticks and leaves 30 ticks later "
        "(as players do from a queue); the percentiles include those ticks; adds join_ms_max/p50.",
    ),
) -> None:
    """Time the engine's tick (batched step of every session + JPEG encode), unpaced.

    With no options this times the shipped default model, as `reverie play` plays it.

    Example:  reverie bench engine --model runs/out/dit --frames 1000 --sessions 2 --steps 1 --json
    Example:  reverie bench engine --world reverie/Dungeon-v0 --json   (the simulator)
    Example:  reverie bench engine --load --json   (quiet, then with one core busy)
    Example:  reverie bench engine --sessions 2 --joins 10 --load --json   (players come and go)
    """
    from reverie.engine.bench import bench_engine

    if model is not None and world is not None:
        raise ReverieError("pass --model (a world model) or --world (a simulator), not both")
    model, world = _model_or_world(model, world)
    result = bench_engine(
        model, None if model else world, size=size, frames=frames, sessions=sessions, quality=quality,
        seed=seed, steps=steps, threads=threads, load=load, joins=joins, progress=not as_json,
        pipeline=pipeline,
    )  # fmt: skip
    if as_json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            typer.echo(f"{k:>14}: {v}")
