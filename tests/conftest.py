import os

# Headless rendering for every test, whatever the caller's shell says.
os.environ.setdefault("MUJOCO_GL", "egl")
