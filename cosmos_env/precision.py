"""Which precision the CPU runs fastest: bfloat16 autocast only where the CPU has bf16
arithmetic natively. Elsewhere bf16 matmuls are emulated, more than 100x slower than
float32, so ``amp="auto"`` (the default everywhere) turns autocast off there.

``amp`` settings are ``"auto" | True | False``; ``resolve_amp`` turns one into the bool
that ``autocast`` takes. The CPU is asked once per process (``bf16_support``): torch's
capability and feature queries decide on x86, and a tiny timing decides where they say
nothing (other architectures, AVX-512 without the BF16 extension).
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

AmpSetting = bool | str  # "auto" | True | False
X86 = ("x86_64", "amd64", "i386", "i686")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bf16Support:
    """Whether bf16 runs natively on this CPU, and how that was decided (for logs and the
    ``machine`` block of benchmark results)."""

    native: bool
    reason: str


def _x86_feature(torch_query: str, cpuinfo_flag: str) -> bool:
    """A CPU feature from torch's query (``torch.cpu._is_*_supported``), or from
    /proc/cpuinfo where this torch lacks the query."""
    query = getattr(torch.cpu, torch_query, None)
    if query is not None:
        return bool(query())
    try:
        return cpuinfo_flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def bf16_from_flags() -> Bf16Support | None:
    """The verdict of the CPU's feature flags, or None where they are not conclusive."""
    if platform.machine().lower() not in X86:
        return None  # ARM's bf16 paths depend on the build: measure instead
    capability = torch.backends.cpu.get_cpu_capability()
    if capability in ("DEFAULT", "AVX2"):
        return Bf16Support(False, f"x86 CPU capability {capability}: no bf16 instructions")
    if _x86_feature("_is_amx_tile_supported", "amx_bf16"):
        return Bf16Support(True, f"x86 CPU capability {capability} with AMX")
    if _x86_feature("_is_avx512_bf16_supported", "avx512_bf16"):
        return Bf16Support(True, f"x86 CPU capability {capability} with AVX512-BF16")
    return None  # AVX-512 without BF16: oneDNN may emulate it at near-fp32 speed


def _best_seconds(a: torch.Tensor, repeats: int) -> float:
    a @ a  # warm-up: kernel selection and allocation
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return best


def bf16_from_timing(size: int = 512, repeats: int = 2) -> Bf16Support:
    """A one-off timing: bf16 counts as native when a ``size``^2 bf16 matmul is faster than
    the float32 one (autocast also pays for casts, so merely equal speed is a loss). At
    512^2 the arithmetic, not thread start-up, sets the time (at 256^2 an emulated bf16
    matmul here timed as fast as fp32); about 0.4 s where bf16 is emulated, 10 ms where
    it is not."""
    a = torch.randn(size, size, generator=torch.Generator().manual_seed(0))
    fp32 = _best_seconds(a, repeats)
    bf16 = _best_seconds(a.bfloat16(), repeats)
    native = bf16 < fp32
    return Bf16Support(native, f"timing: {size}^2 matmul bf16 {fp32 / bf16:.2g}x fp32's speed")


@lru_cache(maxsize=1)
def bf16_support() -> Bf16Support:
    """Whether this CPU runs bf16 natively, asked once per process."""
    support = bf16_from_flags() or bf16_from_timing()
    _log.info("bf16 natively: %s (%s)", support.native, support.reason)
    return support


def resolve_amp(amp: AmpSetting) -> bool:
    """``"auto"`` -> whether the CPU runs bf16 natively; True / False (or the strings
    "true" / "false") as given. Anything else raises ValueError."""
    if isinstance(amp, bool):
        return amp
    text = str(amp).strip().lower()
    if text == "auto":
        return bf16_support().native
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(f"amp must be 'auto', True or False, got {amp!r}")


def describe_amp(amp: AmpSetting) -> dict:
    """What a setting resolved to and why, for benchmark JSON, logs and model cards."""
    enabled = resolve_amp(amp)
    reason = bf16_support().reason if str(amp).lower() == "auto" else "set explicitly"
    return {"requested": amp, "bf16_autocast": enabled, "reason": reason}


def amp_words(described: dict) -> str:
    """``describe_amp``'s dict in words, e.g. "bf16 autocast on (amp=auto: ...)"."""
    state = "on" if described["bf16_autocast"] else "off"
    return f"bf16 autocast {state} (amp={described['requested']}: {described['reason']})"


def amp_text(amp: AmpSetting) -> str:
    """One line for logs and cards: what ``amp`` resolved to here and why."""
    return amp_words(describe_amp(amp))


def autocast(enabled: bool) -> torch.autocast:
    """The CPU bf16 autocast context, a no-op when not ``enabled``."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)
