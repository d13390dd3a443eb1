"""Jobs the executor tests map: module-level functions in an importable module, as
executors need (spawned processes and Ray actors import them by name)."""

import os
import time

_worker: dict = {}  # what the initializer set up in this worker


def set_offset(offset: int) -> None:
    """Initializer: remember ``offset`` in this worker."""
    _worker["offset"] = offset


def slow_square_plus_offset(x: int) -> int:
    """``x * x`` plus the worker's offset; small items take longest, so that workers finish
    out of order and only the executor can put the results back in order."""
    time.sleep(0.02 * (10 - x))
    return x * x + _worker["offset"]


def die_on_three(x: int) -> int:
    """The worker process dies (as in a renderer segfault) on item 3."""
    if x == 3:
        os._exit(139)
    return x


def failing_initializer() -> None:
    """An initializer that raises, as a bad configuration would."""
    raise ValueError("bad worker setup")
