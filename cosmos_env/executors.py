"""Where embarrassingly parallel jobs run: a local process pool, or Ray.

``generate``, ``curate`` and the policy-evaluation sweep are maps of one function over
independent items (episode indices, video files, policies). An :class:`Executor` runs such
a map and yields the results **in the items' order**, so that a store written from them is
the same whichever executor ran it. Each worker first runs an ``initializer`` once (build
an env, load a tokenizer); the mapped function then reads what it set up from its module,
exactly as with :class:`concurrent.futures.ProcessPoolExecutor`'s initializer.

- ``local`` (the default): ``workers`` spawned processes on this machine, or this process
  alone when ``workers == 1``.
- ``ray``: one Ray actor per worker. ``ray.init`` joins the cluster named by
  ``RAY_ADDRESS`` (``ray start --head`` on the head node, ``ray start --address=...`` on
  the others), or starts a local instance with ``workers`` CPUs. A Ray session this
  process already opened is used as is. Needs the ``ray`` extra.

A worker that dies mid-map (a crash in the renderer, the OOM killer, a lost node) raises
:class:`WorkerLost` from either executor, so that callers can restart from what they kept
without importing Ray.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from cosmos_env.machine import share_cores

EXECUTORS = ("local", "ray")


class WorkerLost(RuntimeError):
    """A worker died during a map (its process crashed or was killed); the results not yet
    yielded are lost, those yielded stand."""

    @classmethod
    def of(cls, executor: str, cause: BaseException) -> WorkerLost:
        """The error to raise for ``cause``, in one line (Ray's run to several)."""
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return cls(f"a {executor} worker died: {first_line}")


class Executor(Protocol):
    """Runs ``fn`` over ``items`` on ``workers`` workers; results in the items' order."""

    workers: int

    def map(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
    ) -> Iterator[Any]: ...


def _init_worker(workers: int, initializer: Callable[..., None] | None, initargs: tuple):
    share_cores(workers)  # torch and llvmpipe threads: this worker's share of the cores
    if initializer is not None:
        initializer(*initargs)


class LocalExecutor:
    """``workers`` spawned processes (this process alone when ``workers == 1``)."""

    name = "local"

    def __init__(self, workers: int):
        self.workers = workers

    def map(self, fn, items, initializer=None, initargs=()):
        if self.workers == 1:
            if initializer is not None:
                initializer(*initargs)
            yield from map(fn, items)
            return
        context = mp.get_context("spawn")
        init = (self.workers, initializer, initargs)
        pool = ProcessPoolExecutor(self.workers, context, _init_worker, init)
        try:
            yield from pool.map(fn, items)
        except BrokenProcessPool as e:
            raise WorkerLost.of(self.name, e) from e
        finally:  # on an error or Ctrl-C, the queued items are dropped, not waited for
            pool.shutdown(wait=True, cancel_futures=True)


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise ImportError(
            "executor=ray needs Ray, which is not installed: pip install 'cosmos-env[ray]' "
            "(or use executor=local)"
        ) from e
    return ray


class _Worker:
    """The body of one Ray actor: runs the initializer once, then mapped calls."""

    def __init__(self, workers: int, initializer, initargs: tuple):
        _init_worker(workers, initializer, initargs)

    def call(self, fn, item):
        return fn(item)


class RayExecutor:
    """One Ray actor per worker, each holding one CPU; results in the items' order.

    Uses the Ray session this process opened, else joins ``RAY_ADDRESS``'s cluster, else
    starts a local instance with ``workers`` CPUs (and shuts it down again after the map).
    """

    name = "ray"

    def __init__(self, workers: int):
        self.ray = _import_ray()
        self.workers = workers

    def _connect(self) -> bool:
        """Connect unless connected; True when this call started the session."""
        if self.ray.is_initialized():
            return False
        options: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
        if not os.environ.get("RAY_ADDRESS"):
            options["num_cpus"] = self.workers
        self.ray.init(**options)
        return True

    def map(self, fn, items, initializer=None, initargs=()):
        from ray.util import ActorPool

        started = self._connect()
        worker = self.ray.remote(num_cpus=1)(_Worker)
        actors = [worker.remote(self.workers, initializer, initargs) for _ in range(self.workers)]
        try:
            pool = ActorPool(actors)
            yield from pool.map(lambda actor, item: actor.call.remote(fn, item), items)
        except self.ray.exceptions.RayActorError as e:
            if e.actor_init_failed:  # the initializer raised: an error to show, not a crash
                raise
            raise WorkerLost.of(self.name, e) from e
        finally:
            for actor in actors:
                self.ray.kill(actor)
            if started:
                self.ray.shutdown()


def check_executor(name: str) -> None:
    """Raise before any work starts what ``make_executor(name, ...)`` would raise later:
    ValueError for an unknown ``name``, ImportError for ``ray`` without Ray installed."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    if name == "ray":
        _import_ray()


def make_executor(name: str, workers: int) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``) with ``workers`` workers."""
    if workers < 1:
        raise ValueError(f"an executor needs at least one worker, got workers={workers}")
    check_executor(name)
    return LocalExecutor(workers) if name == "local" else RayExecutor(workers)
