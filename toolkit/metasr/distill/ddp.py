"""Multi-GPU training under ``torchrun``: the process group, the wrapped model and per-rank seeds.

``torchrun --nproc_per_node N script.py`` starts one process per GPU and sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; without them everything runs as a single process
and every helper here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from metasr.errors import MetaSRError

RANK_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
RENDEZVOUS_VARS = ("MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when not launched by it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DistributedContext:
        """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; a single process when none is set."""
        env = os.environ if environ is None else environ
        if not any(name in env for name in RANK_VARS):
            return cls()
        missing = [name for name in RANK_VARS if name not in env]
        if missing:
            raise MetaSRError(f"{', '.join(missing)} not set; launch with torchrun or set {', '.join(RANK_VARS)}")
        try:
            rank, world_size, local_rank = (int(env[name]) for name in RANK_VARS)
        except ValueError:
            values = ", ".join(f"{name}={env[name]!r}" for name in RANK_VARS)
            raise MetaSRError(f"non-integer torchrun variables ({values}); launch with torchrun") from None
        if not 0 <= rank < world_size or local_rank < 0:
            raise MetaSRError(f"RANK={rank} is outside WORLD_SIZE={world_size}; launch with torchrun")
        return cls(rank, world_size, local_rank)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the rank that logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """This rank's GPU (``cuda:LOCAL_RANK``), or the CPU when there is no CUDA."""
        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")

    def init(self) -> DistributedContext:
        """Pin this rank's GPU and join the process group (NCCL on CUDA, gloo otherwise); returns ``self``."""
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if self.distributed and not dist.is_initialized():
            missing = [name for name in RENDEZVOUS_VARS if name not in os.environ]
            if missing:
                raise MetaSRError(f"{', '.join(missing)} not set; launch with torchrun")
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend, rank=self.rank, world_size=self.world_size)
        return self

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel (rank 0's weights broadcast) when distributed, else as is."""
        if not self.distributed:
            return model
        device_ids = [self.local_rank] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def seed_for(self, seed: int) -> int:
        """A per-rank seed, so ranks draw different data and noise from one configured seed."""
        return seed + self.rank

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.distributed:
            dist.barrier()

    def shutdown(self) -> None:
        """Leave the process group, if joined."""
        if dist.is_initialized():
            dist.destroy_process_group()

    def all_reduce_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The mean of ``tensor`` over all ranks (a new tensor; ``tensor`` itself is untouched)."""
        total = tensor.detach().clone()
        if self.distributed:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total / self.world_size
