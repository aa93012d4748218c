"""Engine: play a world live. Knows nothing of HTTP.

- `controls`: player input state (keys, sticks, touch) -> an action of the world's action spec.
- `backends`: what produces frames for a batch of sessions (`SimulatorBackend`, the real world);
  `model_backend`: `ModelBackend`, the learned world model (the dream).
- `session`: `WorldSession`, one player's reset/step API over a backend.
- `clock`: one real-time clock that steps every active session in one batch per tick.
"""

from __future__ import annotations
