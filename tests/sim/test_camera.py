"""The front camera's pinhole projection lands known 3-D points on their pixels."""

import numpy as np

from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.camera import project
from cosmos_env.sim.tabletop_world import TabletopWorld


def test_projected_cube_centre_is_on_the_red_cube():
    world = TabletopWorld(n_objects=2, image_size=64)
    try:
        for seed in range(3):
            world.reset(np.random.default_rng(seed))
            frame = world.render().astype(int)
            cube = world.state()[sl.slot("cube_pos")].astype(np.float64)
            u, v = project(world.projection(), cube)
            assert -1 < u < 1 and -1 < v < 1
            col, row = int((u + 1) / 2 * 64), int((v + 1) / 2 * 64)
            r, g, b = frame[row, col]
            assert r > 120 and r > 2 * g and r > 2 * b, (seed, frame[row, col])
    finally:
        world.close()


def test_points_further_away_project_closer_to_the_centre():
    world = TabletopWorld()
    proj = world.projection()
    near, far = project(proj, np.array([[0.2, -0.2, 0.02], [0.2, 0.25, 0.02]]))
    assert abs(far[0]) < abs(near[0])  # same x offset, deeper: nearer the image centre
    assert far[1] < near[1]  # further up the table is higher in the image
    world.close()
