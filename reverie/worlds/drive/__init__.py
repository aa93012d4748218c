"""`reverie/Drive-v0`, driving seen from the car on a pseudo-3D road.

`env` is the Gymnasium environment; `road` builds the track, its roadside and traffic, `render`
projects a frame, `sprites` draws the vehicles and props and `caption` describes the scene.
"""

from reverie.worlds.drive.env import DriveEnv

__all__ = ["DriveEnv"]
