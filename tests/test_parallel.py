"""Chapter 11: tensor-parallel attention, 2 ranks under torchrun (gloo) and 1 rank in-process."""

from __future__ import annotations

import re
import zlib

import pytest
import torch
import torch.distributed as dist

import mha
from mha.course import tp_demo
from mha.parallel import TensorParallelMultiHeadAttention, shard_rows


def test_two_ranks_under_torchrun_match_the_single_process():
    """Outputs and every rank's gradient slices within 1e-6, one all-reduce each way."""
    run = tp_demo.launch()
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    ranks = [line for line in lines if " rank " in line]
    assert len(ranks) == 2 * len(tp_demo.CONFIGS), run.stdout
    for line in ranks:
        errors = re.findall(r"diff\| = (round-off|[0-9.e+-]+)", line)
        assert len(errors) == 2, line
        assert all(e == "round-off" or float(e) < 1e-6 for e in errors), line
        assert line.endswith("all-reduces forward 1 backward 1"), line
    assert lines[-1].endswith(": True")


@pytest.fixture(scope="module")
def one_rank_group(tmp_path_factory):
    """A world of one gloo process (this one), through a file store."""
    store = dist.FileStore(str(tmp_path_factory.mktemp("store") / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize("g", [None, 2])
def test_one_rank_equals_the_module(one_rank_group, g):
    torch.manual_seed(zlib.crc32(f"one-rank-{g}".encode()))
    m = mha.MultiHeadAttention(16, 4, dtype=torch.float64, num_kv_heads=g)
    tp = TensorParallelMultiHeadAttention.from_module(m)
    q, kv = torch.randn(2, 3, 16, dtype=torch.float64), torch.randn(2, 5, 16, dtype=torch.float64)
    mask = torch.rand(2 * 4, 3, 5) < 0.3  # per-head boolean mask
    out, none = tp(q, kv, kv, attn_mask=mask)
    ref = m(q, kv, kv, attn_mask=mask, need_weights=False)[0]
    assert none is None and (out - ref).abs().max() < 1e-12


def test_shard_rows_split_heads_evenly():
    m = mha.MultiHeadAttention(16, 4, num_kv_heads=2)  # d_head 4: q rows 0..15, k 16..23, v 24..31
    assert shard_rows(m, 1, 2).tolist() == [
        8,
        9,
        10,
        11,
        12,
        13,
        14,
        15,
        20,
        21,
        22,
        23,
        28,
        29,
        30,
        31,
    ]
    rows = torch.cat([shard_rows(m, r, 2) for r in range(2)])
    assert sorted(rows.tolist()) == list(range(32))
    with pytest.raises(ValueError, match="divisible by world_size=4"):
        shard_rows(m, 0, 4)  # 2 K/V heads cannot split over 4 ranks
