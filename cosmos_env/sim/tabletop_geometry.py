"""Sizes of the tabletop's fixed parts (metres), shared by the task tests, the scene, the
MJCF and the experts."""

TABLE_TOP_Z = 0.0
CUBE_HALF = 0.02
ZONE_RADIUS = 0.05
BOWL_RADIUS = 0.06
BOWL_RIM_Z = 0.035
