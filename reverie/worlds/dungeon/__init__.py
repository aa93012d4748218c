"""`reverie/Dungeon-v0`, a first-person procedural dungeon ray-cast in NumPy.

`env` is the Gymnasium environment; `map` lays out a seeded dungeon, `bake` precomputes an episode's
textures and light, `render` ray-casts a frame and `sprites` draws the billboard props.
"""

from reverie.worlds.dungeon.env import ACTION_NAMES, PHRASES, DungeonEnv

__all__ = ["ACTION_NAMES", "PHRASES", "DungeonEnv"]
