"""Validation of actions at the env boundary, shared by every cosmos-env env."""

from __future__ import annotations

import numpy as np


def validate_action(action, shape: tuple[int, ...], names: tuple[str, ...] = ()) -> np.ndarray:
    """Return ``action`` as float32 clipped to [-1, 1], or raise a ValueError naming the problem
    (``names``, the action spec's dimension names, say in the error what is expected).

    Accepts any real floating dtype; integer, bool and object arrays are refused because
    they almost always mean a discrete-action policy was plugged into a continuous env.
    """
    arr = np.asarray(action)
    meaning = f": [{', '.join(names)}] in [-1, 1]" if names else " in [-1, 1]"
    if arr.shape != shape:
        raise ValueError(f"action has shape {arr.shape}, expected {shape}{meaning}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"action has dtype {arr.dtype}, expected a float dtype (float32)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"action contains NaN or inf: {arr}")
    return np.clip(arr.astype(np.float32), -1.0, 1.0)
