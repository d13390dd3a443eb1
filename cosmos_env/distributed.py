"""Data-parallel training on several processes, launched by ``torchrun``.

``torchrun --nproc_per_node=N -m cosmos_env train-dynamics ...`` starts N copies of a
training command; `training.fit` then runs data-parallel over ``torch.distributed`` (gloo on
the CPU): every process starts from rank 0's weights, draws its own batches of
``batch_size`` (so the global batch is ``batch_size`` x N), and averages the gradients of
every step with one all-reduce before the optimiser step, so the copies stay identical.
Rank 0 alone evaluates, logs, saves the training state and writes the release.

The gradients are averaged here rather than by wrapping the model in
``DistributedDataParallel``: a trainer's step calls the model's loss methods (and several
per step: the denoiser, the state track, the outcome heads), not its ``forward``, which is
the only call DDP's reducer hooks. One flat all-reduce per step is what DDP's reducer does
for a model this size (a handful of megabytes: one bucket).

Without torchrun (no ``WORLD_SIZE`` in the environment, or 1) nothing here does anything,
and a single-process run draws exactly the batches it always did.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group: ``rank`` of ``size`` processes."""

    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that evaluates, logs, saves and releases."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


def ranks() -> Ranks:
    """The current process group's ranks, or a lone process's (0 of 1)."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def launched_size() -> int:
    """How many processes torchrun started for this job (1 when it did not start this one)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as e:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from e


def launched_rank() -> int:
    """This process's rank as torchrun set it (0 when it did not start this one); readable
    before the process group is joined, e.g. to name a log file."""
    return int(os.environ.get("RANK", "0"))


def local_size() -> int:
    """How many of the job's processes share this machine (torchrun's LOCAL_WORLD_SIZE)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", launched_size()))


def init_from_environment() -> Ranks:
    """Join the process group torchrun describes in the environment (gloo, so CPUs work),
    once; a process torchrun did not start stays alone."""
    if launched_size() > 1:
        if not dist.is_available():
            raise RuntimeError(
                "torchrun started several processes, but torch.distributed is "
                "not available in this PyTorch build"
            )
        if not dist.is_initialized():
            dist.init_process_group("gloo")
    return ranks()


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers, in place."""
    if not ranks().parallel:
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, 0)


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replace every trainable parameter's gradient by its mean over the ranks (one flat
    all-reduce); a parameter that this rank's step did not reach counts as a zero gradient."""
    group = ranks()
    if not group.parallel:
        return
    trainable = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in trainable]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= group.size
    for p, grad, mean in zip(trainable, grads, flat.split([g.numel() for g in grads]), strict=True):
        p.grad = grad.copy_(mean.view_as(grad))


def agree(value: bool) -> bool:
    """Rank 0's ``value`` on every rank, so that all stop at the same step (each rank's
    clock reads a little differently against a wall-clock budget)."""
    if not ranks().parallel:
        return value
    flag = torch.tensor([1 if value else 0], dtype=torch.int32)
    dist.broadcast(flag, 0)
    return bool(flag.item())


def helper_result(step: int, seconds: float) -> dict:
    """What a trainer returns in a rank other than 0, which releases nothing."""
    return {"steps": step, "wall_minutes": seconds / 60, "rank": ranks().rank}


def batch_text(batch_size: int) -> str:
    """The global batch for a model card: ``batch_size`` alone, or with its split over the
    processes of a data-parallel run ("64 (2 processes x 32)")."""
    group = ranks()
    if not group.parallel:
        return str(batch_size)
    return f"{batch_size * group.size} ({group.size} processes x {batch_size})"
