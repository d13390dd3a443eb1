"""amp="auto" | True | False: bf16 autocast only where the CPU runs bf16 natively, decided
from torch's capability and feature queries (mocked here), or a timing where they say
nothing; the envs, configs and trainers take the setting."""

import numpy as np
import pytest
import torch

from cosmos_env import precision
from cosmos_env.config import CompareConfig, load_config
from cosmos_env.envs.vector_env import WorldModelVectorEnv


@pytest.fixture
def cpu(monkeypatch):
    """``cpu(arch, capability, avx512_bf16=False, amx=False)`` mocks what torch and
    ``platform`` report; the per-process verdict is recomputed, and a timing is refused
    unless the test allows it."""
    precision.bf16_support.cache_clear()

    def no_timing(*args, **kwargs):
        raise AssertionError("the flags should have decided without a timing")

    monkeypatch.setattr(precision, "bf16_from_timing", no_timing)

    def mock(arch: str, capability: str, avx512_bf16: bool = False, amx: bool = False) -> None:
        monkeypatch.setattr(precision.platform, "machine", lambda: arch)
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)

    yield mock
    precision.bf16_support.cache_clear()


def test_auto_is_off_where_the_capability_has_no_bf16(cpu):
    cpu("x86_64", "AVX2")
    assert precision.resolve_amp("auto") is False
    assert "AVX2" in precision.bf16_support().reason


def test_auto_is_on_where_the_cpu_has_avx512_bf16_or_amx(cpu):
    cpu("x86_64", "AVX512", avx512_bf16=True)
    assert precision.resolve_amp("auto") is True
    assert "AVX512-BF16" in precision.bf16_support().reason
    precision.bf16_support.cache_clear()
    cpu("x86_64", "AVX512", amx=True)
    assert precision.resolve_amp("auto") is True and "AMX" in precision.bf16_support().reason


@pytest.mark.parametrize(
    ("arch", "capability"), [("x86_64", "AVX512"), ("aarch64", "SVE256"), ("arm64", "DEFAULT")]
)
def test_inconclusive_flags_are_settled_by_a_timing(cpu, monkeypatch, arch, capability):
    cpu(arch, capability)  # AVX-512 without BF16 may be emulated well; ARM says nothing
    calls = []

    def timing():
        calls.append(1)
        return precision.Bf16Support(False, "timing: mocked")

    monkeypatch.setattr(precision, "bf16_from_timing", timing)
    assert precision.resolve_amp("auto") is False
    assert precision.resolve_amp("auto") is False
    assert calls == [1]  # once per process


@pytest.mark.parametrize(("fp32_s", "bf16_s", "native"), [(1e-3, 0.1, False), (1e-3, 4e-4, True)])
def test_the_timing_counts_bf16_native_only_when_faster(monkeypatch, fp32_s, bf16_s, native):
    monkeypatch.setattr(
        precision,
        "_best_seconds",
        lambda a, repeats: bf16_s if a.dtype == torch.bfloat16 else fp32_s,
    )
    support = precision.bf16_from_timing()
    assert support.native is native and support.reason.startswith("timing:")


def test_the_real_timing_runs_and_agrees_with_itself():
    a, b = precision.bf16_from_timing(size=64), precision.bf16_from_timing(size=64)
    assert isinstance(a.native, bool) and "64^2" in a.reason and b.reason.startswith("timing")


def test_explicit_settings_pass_through_and_bad_ones_are_named():
    assert precision.resolve_amp(True) is True and precision.resolve_amp(False) is False
    assert precision.resolve_amp("true") is True and precision.resolve_amp("False") is False
    with pytest.raises(ValueError, match="amp must be 'auto', True or False, got 'fast'"):
        precision.resolve_amp("fast")
    assert precision.describe_amp(False) == {
        "requested": False,
        "bf16_autocast": False,
        "reason": "set explicitly",
    }


def test_configs_default_to_auto_and_refuse_a_bad_setting():
    assert load_config("compare", CompareConfig, []).amp == "auto"
    assert load_config("compare", CompareConfig, ["amp=false"]).amp is False
    with pytest.raises(ValueError, match="amp must be"):
        load_config("compare", CompareConfig, ["amp=fast"])


@pytest.mark.parametrize("native", [False, True])
def test_the_env_resolves_auto_from_the_cpu(cpu, tiny_world_model_dir, native):
    cpu("x86_64", "AVX512" if native else "AVX2", avx512_bf16=native)
    env = WorldModelVectorEnv(num_envs=2, checkpoint=str(tiny_world_model_dir))
    forced = WorldModelVectorEnv(num_envs=2, checkpoint=str(tiny_world_model_dir), amp=True)
    try:
        assert env.core.amp is native and forced.core.amp is True
        env.reset(seed=0)
        obs, *_ = env.step(np.zeros((2, 7), np.float32))
        assert obs.shape == (2, *env.single_observation_space.shape) and obs.dtype == np.uint8
    finally:
        env.close()
        forced.close()
