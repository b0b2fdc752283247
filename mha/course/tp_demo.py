"""Chapter 11: a 2-rank tensor-parallel check, launched with ``torchrun`` (gloo, 127.0.0.1).

``launch()`` starts ``torchrun --nproc_per_node=2 -m mha.course.tp_demo`` and returns
what rank 0 printed. Every rank builds the same seeded float64 module, runs it whole
(the single-process reference) and as its shard, and compares the output and the
gradients of its own slices. Rank 0 prints the comparison for every rank; the text is
deterministic (errors below 1e-13 print as round-off).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch
import torch.distributed as dist

import mha
from mha.parallel import TensorParallelMultiHeadAttention, shard_rows

CONFIGS = [("MHA", 8, None), ("GQA", 8, 2)]  # (name, num_heads, num_kv_heads)
E, N, L = 32, 2, 6


def _reference(num_heads: int, num_kv_heads: int | None):
    """The single-process module, inputs, masks and gradients (the same on every rank)."""
    torch.manual_seed(13)
    m = mha.MultiHeadAttention(E, num_heads, dtype=torch.float64, num_kv_heads=num_kv_heads)
    with torch.no_grad():
        m.in_proj_bias.normal_()
        m.out_proj.bias.normal_()
    x = torch.randn(N, L, E, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(N, L, E, dtype=torch.float64)  # loss = sum(out * weight)
    pad = torch.zeros(N, L, dtype=torch.bool)
    pad[1, -2:] = True
    causal = mha.causal_mask(L)
    out = m(x, x, x, key_padding_mask=pad, need_weights=False, attn_mask=causal)[0]
    (out * weight).sum().backward()
    return m, x, weight, pad, causal, out.detach()


class _Counter:
    """Counts calls of ``dist.all_reduce`` while it is installed."""

    def __init__(self) -> None:
        self.calls, self._orig = 0, dist.all_reduce

    def __enter__(self) -> _Counter:
        def counted(*args, **kwargs):
            self.calls += 1
            return self._orig(*args, **kwargs)

        dist.all_reduce = counted
        return self

    def __exit__(self, *exc: object) -> None:
        dist.all_reduce = self._orig


def _check(name: str, num_heads: int, num_kv_heads: int | None) -> dict:
    """This rank's shard against the whole module: errors and all-reduce counts."""
    m, x_ref, weight, pad, causal, out_ref = _reference(num_heads, num_kv_heads)
    tp = TensorParallelMultiHeadAttention.from_module(m)
    x = x_ref.detach().clone().requires_grad_(True)
    with _Counter() as fwd:
        out = tp(x, x, x, key_padding_mask=pad, attn_mask=causal)[0]
    with _Counter() as bwd:
        (out * weight).sum().backward()
    rank, world = dist.get_rank(), dist.get_world_size()
    rows = shard_rows(m, rank, world)
    cols = rows[: E // world]
    grads = {
        "in_proj_weight": (tp.in_proj_weight.grad, m.in_proj_weight.grad[rows]),
        "in_proj_bias": (tp.in_proj_bias.grad, m.in_proj_bias.grad[rows]),
        "out_proj_weight": (tp.out_proj_weight.grad, m.out_proj.weight.grad[:, cols]),
        "out_proj_bias": (tp.out_proj_bias.grad, m.out_proj.bias.grad),
        "input": (x.grad, x_ref.grad),
    }
    return {
        "name": name,
        "rank": rank,
        "heads": (rank * tp.num_heads, (rank + 1) * tp.num_heads - 1),
        "shape": tuple(tp.in_proj_weight.shape),
        "out": (out - out_ref).abs().max().item(),
        "grads": {k: (a - b).abs().max().item() for k, (a, b) in grads.items()},
        "all_reduces": (fwd.calls, bwd.calls),
    }


def _report(results: list[dict]) -> None:
    """Rank 0's deterministic printout of every rank's comparison."""
    worst = 0.0
    for r in results:
        lo, hi = r["heads"]
        grad = max(r["grads"].values())
        worst = max(worst, r["out"], grad)
        print(
            f"{r['name']} rank {r['rank']}: heads {lo}-{hi}, in_proj_weight {r['shape']}, "
            f"max |out diff| = {_fmt(r['out'])}, max |grad diff| = {_fmt(grad)}, "
            f"all-reduces forward {r['all_reduces'][0]} backward {r['all_reduces'][1]}"
        )
    print(f"outputs and gradients match the single process to 1e-6: {worst < 1e-6}")


def _fmt(err: float) -> str:
    """``:.1e``, round-off (below 1e-13) as the notebooks' sanitizer shows it."""
    return "round-off" if err < 1e-13 else f"{err:.1e}"


def main() -> None:
    """One rank's part: check every configuration, gather to rank 0, print there."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    results = [_check(*config) for config in CONFIGS]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, results)
    if dist.get_rank() == 0:
        _report(sorted((r for rank in gathered for r in rank), key=lambda r: r["name"] != "MHA"))
    dist.destroy_process_group()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(module: str, nproc: int = 2, *args: str) -> list[str]:
    """``torchrun`` on 127.0.0.1 with ``nproc`` processes running ``python -m module``."""
    return [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", module, *args,
    ]  # fmt: skip


def launch(timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the 2-rank check with ``torchrun``; ``stdout`` is rank 0's report."""
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    cmd = torchrun_command("mha.course.tp_demo")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


if __name__ == "__main__":
    main()
