"""MuJoCo ground-truth worlds, their tasks and scripted experts, and a recorder for any
Gymnasium MuJoCo env."""

import os

# MuJoCo picks its GL backend when it is first imported: headless EGL unless the user chose.
os.environ.setdefault("MUJOCO_GL", "egl")
