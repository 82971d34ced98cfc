"""Process-group setup for ``torchrun``: one process per rank, gloo on CPU, nccl on GPU.

``RANK`` in the environment means a distributed run (torchrun sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). Multi-node runs use the same code, started
on each node with ``torchrun --nnodes=N --node_rank=i --rdzv_endpoint=HOST:PORT``.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run.

    :ivar device: ``cpu`` or ``cuda:<local_rank>``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, writes TensorBoard and checkpoints."""
        return self.rank == 0

    def barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()

    def all_gather_tensor(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's copy of an equally shaped tensor (just ``[tensor]`` when alone)."""
        if not dist.is_initialized():
            return [tensor]
        gathered = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(gathered, tensor)
        return gathered

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks of a tensor (a copy)."""
        values = values.clone()
        if dist.is_initialized():
            dist.all_reduce(values)
        return values


def init_distributed(*, timeout_s: float = 3 * 3600.0) -> DistContext:
    """Join the process group when launched by torchrun; a single-process context otherwise.

    :param timeout_s: collective timeout. Long, because rank 0 may fuse many scenes before
        the first barrier; a crashed rank still ends the run at once (torchrun stops the
        others).
    """
    if "RANK" not in os.environ:
        return DistContext()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank=rank, world_size=world, local_rank=local_rank,
                       device=f"cuda:{local_rank}" if use_cuda else "cpu")


def shutdown_distributed() -> None:
    """Leave the process group (safe to call when none was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()
