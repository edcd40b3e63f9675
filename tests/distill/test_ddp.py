"""torchrun helpers: environment parsing, and a real two-process gloo run of a DDP training step."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from metasr.distill.ddp import DistributedContext
from metasr.errors import MetaSRError

pytestmark = pytest.mark.training

WORLD_SIZE = 2


def test_single_process_without_torchrun_variables() -> None:
    ctx = DistributedContext.from_env({})
    assert (ctx.rank, ctx.world_size, ctx.local_rank) == (0, 1, 0)
    assert ctx.is_main and not ctx.distributed
    model = nn.Linear(2, 2)
    assert ctx.init().wrap(model) is model
    assert ctx.seed_for(5) == 5
    value = torch.tensor([3.0])
    assert torch.equal(ctx.all_reduce_mean(value), value)
    ctx.barrier()
    ctx.shutdown()


def test_rank_variables_are_parsed_and_checked() -> None:
    ctx = DistributedContext.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (ctx.rank, ctx.world_size, ctx.local_rank) == (3, 4, 1)
    assert not ctx.is_main and ctx.seed_for(10) == 13
    with pytest.raises(MetaSRError, match="LOCAL_RANK not set"):
        DistributedContext.from_env({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(MetaSRError, match="non-integer"):
        DistributedContext.from_env({"RANK": "zero", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    with pytest.raises(MetaSRError, match="outside WORLD_SIZE"):
        DistributedContext.from_env({"RANK": "2", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(8, 4, generator=gen), torch.randn(8, 2, generator=gen)


def _train_step(rank: int, port: int, out: Path) -> None:
    """One rank of the job: a different init and batch per rank, one DDP step, then an all-reduce."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    ctx = DistributedContext.from_env().init()
    try:
        torch.manual_seed(ctx.seed_for(0))  # ranks start apart: DDP must broadcast rank 0's weights
        model = ctx.wrap(nn.Linear(4, 2))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        x, target = _batch(ctx.seed_for(100))
        F.mse_loss(model(x), target).backward()
        optimizer.step()
        mean = ctx.all_reduce_mean(torch.tensor([float(rank + 1)]))
        ctx.barrier()
        state = {name: p.detach() for name, p in model.module.state_dict().items()}
        save_file({**state, "mean": mean}, out / f"rank{rank}.safetensors")
    finally:
        ctx.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_train_in_lockstep(tmp_path: Path) -> None:
    mp.spawn(_train_step, args=(_free_port(), tmp_path), nprocs=WORLD_SIZE, join=True)
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(WORLD_SIZE)]

    for name in ("weight", "bias"):
        assert torch.equal(ranks[0][name], ranks[1][name])
    assert all(torch.equal(r["mean"], torch.tensor([1.5])) for r in ranks)

    # the same step in one process: rank 0's init, gradients averaged over both ranks' batches
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = [F.mse_loss(model(x), target) for x, target in (_batch(100 + r) for r in range(WORLD_SIZE))]
    (sum(losses) / WORLD_SIZE).backward()
    optimizer.step()
    torch.testing.assert_close(ranks[0]["weight"], model.weight.detach())
    torch.testing.assert_close(ranks[0]["bias"], model.bias.detach())
