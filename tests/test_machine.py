"""Per-machine defaults: usable cores (affinity and container quota), worker counts, torch
and llvmpipe threads in worker processes, and the machine block of benchmark results."""

import json
import os

import torch

from cosmos_env import machine
from cosmos_env.__main__ import main
from cosmos_env.precision import bf16_support


def test_usable_cores_respect_a_container_quota(monkeypatch):
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(machine, "_cgroup_cpu_quota", lambda: None)
    assert machine.usable_cores() == affinity
    monkeypatch.setattr(machine, "_cgroup_cpu_quota", lambda: 0.5)
    assert machine.usable_cores() == 1  # half a core still runs one thread
    monkeypatch.setattr(machine, "_cgroup_cpu_quota", lambda: 64.0)
    assert machine.usable_cores() == affinity  # a quota above the affinity changes nothing


def test_default_workers_are_one_per_core_and_at_most_one_per_job(monkeypatch):
    monkeypatch.setattr(machine, "usable_cores", lambda: 8)
    assert machine.default_workers(100) == 8
    assert machine.default_workers(3) == 3
    assert machine.default_workers(0) == 1


def test_render_threads_default_to_the_cores_unless_the_user_set_them(monkeypatch):
    monkeypatch.setattr(machine, "usable_cores", lambda: 3)
    monkeypatch.delenv(machine._USER_LP_THREADS, raising=False)
    monkeypatch.delenv("LP_NUM_THREADS", raising=False)
    machine.default_render_threads()
    assert os.environ["LP_NUM_THREADS"] == "3"
    machine.default_render_threads()  # a worker process inherits both variables
    assert os.environ["LP_NUM_THREADS"] == "3"

    monkeypatch.delenv(machine._USER_LP_THREADS)
    monkeypatch.setenv("LP_NUM_THREADS", "5")
    machine.default_render_threads()
    assert os.environ["LP_NUM_THREADS"] == "5"
    assert os.environ[machine._USER_LP_THREADS] == "5"


def test_workers_share_the_cores(monkeypatch):
    threads = torch.get_num_threads()
    monkeypatch.setattr(machine, "usable_cores", lambda: 4)
    monkeypatch.setenv(machine._USER_LP_THREADS, "")
    try:
        assert machine.share_cores(2) == 2
        assert torch.get_num_threads() == 2 and os.environ["LP_NUM_THREADS"] == "2"
        assert machine.share_cores(8) == 1  # never zero threads
        monkeypatch.setenv(machine._USER_LP_THREADS, "7")
        monkeypatch.setenv("LP_NUM_THREADS", "7")
        machine.share_cores(2)
        assert os.environ["LP_NUM_THREADS"] == "7"  # the user's setting stays
    finally:
        torch.set_num_threads(threads)


def test_torch_threads_never_exceed_the_usable_cores(monkeypatch):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr(machine, "usable_cores", lambda: 1)
        assert machine.set_torch_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(machine, "usable_cores", lambda: 16)
        assert machine.set_torch_threads() == 1  # a smaller choice already made stays
        assert machine.set_torch_threads(3) == 3  # an explicit count is taken as given
    finally:
        torch.set_num_threads(threads)


def test_the_machine_block_says_what_ran():
    info = machine.machine_info()
    for key in ("cpu_model", "usable_cores", "torch_cpu_capability", "bf16_native", "torch"):
        assert info[key] not in (None, "")
    assert info["mujoco_gl"] == "egl" and isinstance(info["bf16_native"], bool)
    assert info["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    json.dumps(info)
    line = machine.machine_line(info)
    assert info["cpu_model"] in line and info["torch_cpu_capability"] in line


def test_the_machine_command_prints_the_block_and_what_auto_chose(capsys):
    assert main(["machine"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["amp_auto"]["bf16_autocast"] is bf16_support().native
    assert printed["usable_cores"] == machine.usable_cores()
