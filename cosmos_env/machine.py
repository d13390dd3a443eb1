"""What this machine has, so that defaults fit it instead of assuming one: the cores a
process may use (CPU affinity and a container's CPU quota), torch and llvmpipe threads
that match them (also inside worker processes), and the ``machine`` block every
benchmark result carries. Only ``os`` at import: ``cosmos_env/__init__`` calls
``default_render_threads``; torch and MuJoCo are imported where asked for.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
from pathlib import Path

# LP_NUM_THREADS as the user gave it ("" when unset), recorded by the first process so that
# worker processes, which inherit our own default, can still tell the two apart.
_USER_LP_THREADS = "COSMOS_ENV_USER_LP_NUM_THREADS"


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by a cgroup v2 (``cpu.max``) or v1 (``cfs_quota_us``) quota, if any."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        root = Path("/sys/fs/cgroup/cpu")
        quota = int((root / "cpu.cfs_quota_us").read_text())
        return None if quota <= 0 else quota / int((root / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a container's quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def default_workers(jobs: int) -> int:
    """Worker processes for ``jobs`` independent jobs: one per usable core, at most one
    per job."""
    return max(1, min(usable_cores(), jobs))


def default_render_threads() -> None:
    """Give llvmpipe (MuJoCo's EGL renderer here) one thread per usable core unless the
    user set ``LP_NUM_THREADS``; Mesa would count every CPU of the host instead. Must run
    before the first GL context; ``import cosmos_env`` calls it."""
    os.environ.setdefault(_USER_LP_THREADS, os.environ.get("LP_NUM_THREADS", ""))
    if not os.environ[_USER_LP_THREADS]:
        os.environ["LP_NUM_THREADS"] = str(usable_cores())


def set_torch_threads(threads: int = 0) -> int:
    """Torch intra-op threads: ``threads`` if > 0, else no more than the usable cores
    (torch counts the host's cores, not a container's quota). Returns the count set."""
    import torch

    if threads <= 0:
        threads = min(torch.get_num_threads(), usable_cores())
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


def share_cores(workers: int) -> int:
    """In one of ``workers`` processes sharing this machine: torch and llvmpipe threads
    set to this process's share of the cores (one each at least), so that the workers do
    not oversubscribe them. Call first thing in a worker (a pool's initializer)."""
    threads = max(1, usable_cores() // max(1, workers))
    if not os.environ.get(_USER_LP_THREADS):
        os.environ["LP_NUM_THREADS"] = str(threads)
    set_torch_threads(threads)
    return threads


CXX_COMPILERS = ("g++", "clang++", "c++")  # what torch.compile's CPU kernels are built with


def has_cxx_compiler() -> bool:
    """Whether a C++ compiler torch.compile (inductor) can build CPU kernels with is on PATH."""
    return any(shutil.which(cxx) for cxx in CXX_COMPILERS)


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gl_renderer() -> str | None:
    """The OpenGL renderer MuJoCo gets here (e.g. llvmpipe), or None if no context opens."""
    try:
        from mujoco.gl_context import GLContext
        from OpenGL import GL

        context = GLContext(8, 8)
        context.make_current()
        try:
            return GL.glGetString(GL.GL_RENDERER).decode()
        finally:
            context.free()
    except Exception:  # no display, no EGL: the block says so instead of failing a benchmark
        return None


def machine_info() -> dict:
    """The ``machine`` block of every benchmark result: CPU, cores, torch's CPU capability
    and whether bf16 is native, versions, and MuJoCo's render backend."""
    import mujoco
    import numpy as np
    import torch

    from cosmos_env.precision import bf16_support

    bf16 = bf16_support()
    return {
        "cpu_model": cpu_model(),
        "architecture": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_native": bf16.native,
        "bf16_reason": bf16.reason,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "mujoco": mujoco.__version__,
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        "gl_renderer": gl_renderer(),
        "lp_num_threads": os.environ.get("LP_NUM_THREADS"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def machine_line(info: dict) -> str:
    """``machine_info`` as one sentence for a benchmark's markdown."""
    bf16 = "native" if info["bf16_native"] else "not native"
    return (
        f"Machine: {info['cpu_model']} ({info['architecture']}), {info['usable_cores']} usable "
        f"cores, torch {info['torch']} with {info['torch_threads']} threads, CPU capability "
        f"{info['torch_cpu_capability']}, bf16 {bf16} ({info['bf16_reason']}); MuJoCo "
        f"{info['mujoco']} rendering through {info['mujoco_gl']} ({info['gl_renderer']})."
    )
