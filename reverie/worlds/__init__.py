"""Worlds: built-in Gymnasium environments, adapters for any Gymnasium id, and video files.

Each built-in world is a sub-package, as Gymnasium groups its environment families: `dungeon/`
(`reverie/Dungeon-v0`) and `drive/` (`reverie/Drive-v0`). Contract of a built-in world:
- `gymnasium.make(id, render_mode="rgb_array", width=64, height=64, continuous=False)`;
  the observation is the rendered frame, uint8 (H, W, 3), and `render()` returns the same frame.
- discrete variant: `Discrete(n)` with `env.unwrapped.action_names` (index 0 is always "noop");
  continuous variant: a `Box` with `env.unwrapped.action_names` naming each axis.
- `info` carries ground truth (world-specific, e.g. `pose`, `room`), `blocked` (movement was
  stopped by an obstacle this step), `caption` (a sentence describing the current scene, stable
  while the scene is the same, phrasing varied per episode and scene) and `scene` (the attribute
  dict the caption was written from, e.g. {"material": "stone", "color": "red", "light": "dim"}).
- deterministic for a seed, frames and captions alike.
"""

from __future__ import annotations

DUNGEON_ID = "reverie/Dungeon-v0"
DRIVE_ID = "reverie/Drive-v0"
DEFAULT_WORLD = DUNGEON_ID  # the shipped model's world: played when no model and no --world is given

BUILTIN_WORLDS: dict[str, str] = {
    DUNGEON_ID: "reverie.worlds.dungeon:DungeonEnv",
    DRIVE_ID: "reverie.worlds.drive:DriveEnv",
}

DESCRIPTIONS: dict[str, str] = {
    DUNGEON_ID: "first-person 3D procedural dungeon: rooms, corridors, doors, lamps, pillars",
    DRIVE_ID: "driving seen from the car: curving lanes, traffic, roadside objects, day and dusk",
}


def register_envs() -> None:
    """Register the built-in worlds with Gymnasium (idempotent)."""
    import gymnasium

    for env_id, entry_point in BUILTIN_WORLDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=None)
