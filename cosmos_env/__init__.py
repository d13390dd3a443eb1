"""cosmos-env: Cosmos-style world models of robot scenes as Gymnasium environments.

Importing the package only registers the environments (string entry points, nothing
heavy imported), so ``gymnasium.make("cosmos_env/Tabletop-Push-v0")`` works after
``import cosmos_env``.
"""

import os

# MuJoCo reads MUJOCO_GL when first imported: default to headless EGL.
os.environ.setdefault("MUJOCO_GL", "egl")

from cosmos_env.machine import default_render_threads  # noqa: E402
from cosmos_env.registration import register_envs  # noqa: E402

default_render_threads()  # llvmpipe threads for the usable cores, before any GL context

__version__ = "0.1.0"

register_envs()
