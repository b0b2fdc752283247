"""Chapter 7: the sweeps, each a list of runs that give a JSON-ready dict.

``python -m mha.experiments <sweep>`` runs one and writes
``mha/results/<sweep>.json``; Chapter 7 loads those files and plots them;
``tests/test_experiments.py`` re-runs one slice of each and compares it within
the tolerance measured across CPU kernels (:mod:`mha.experiments.spread`).

* ``head_count``: h = 1, 2, 4, 8, 16 at ``d_model = 32``: accuracy every 50
  steps, and the share of each head's attention on each relation of the task;
* ``overfitting``: the same head counts on a small fixed training set;
* ``fixed_d_head``: the overfitting setting with ``d_head = 8`` for h = 1, 2
  and 8, so ``d_model = 8 h`` (and the parameter count) grows with ``h``
  (h = 4 is the ``overfitting`` run with 4 heads);
* ``learning_rate``: the head-count sweep at a third of and three times the
  shared learning rate (the first 6 seeds);
* ``pruning``: 2 layers x 4 heads; Michel et al.'s importance, pruning curves
  and Voita et al.'s positional heads (the first 8 seeds).

The seed counts fit the whole of ``python -m mha.experiments all`` into about an
hour on two cores (measured: see the README): 20 seeds for the three sweeps the
verdicts rest on, 6 for the learning-rate check (its 60 runs of 2000 steps cost
as much as another head-count sweep), 8 for pruning (its runs are the longest).

A seed fixes the initial weights and the training data whatever the head
count, so comparisons across head counts are paired.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import tqdm

import mha
from mha.experiments import metrics
from mha.experiments.tasks import task_rng
from mha.experiments.train import Config, make_data, train

__all__ = [
    "SWEEPS",
    "CONFIGS",
    "DEFAULTS",
    "SHARED_LR",
    "THRESHOLDS",
    "run_sweep",
    "sweep_configs",
    "versions",
    "machine",
    "mean_std",
    "probe_indices",
]

SHARED_LR = 3e-3  # the learning rate of every sweep; learning_rate tries a third and 3x
CONFIGS = {
    "head_count": Config(seq_len=10, vocab_size=5, eval_every=50),
    "learning_rate": Config(seq_len=10, vocab_size=5, eval_every=50),
    "overfitting": Config(seq_len=10, vocab_size=5, train_size=200, batch_size=32),
    "fixed_d_head": Config(seq_len=10, vocab_size=5, train_size=200, batch_size=32),
    "pruning": Config(num_layers=2, num_heads=4, seq_len=10, vocab_size=5),
}
SEEDS = tuple(range(20))
DEFAULTS = {  # (head counts, seeds, learning rates) planned for the committed results
    "head_count": ((1, 2, 4, 8, 16), SEEDS, (SHARED_LR,)),
    "overfitting": ((1, 2, 4, 8, 16), SEEDS, (SHARED_LR,)),
    "fixed_d_head": ((1, 2, 8), SEEDS, (SHARED_LR,)),
    "learning_rate": ((1, 2, 4, 8, 16), SEEDS[:6], (1e-3, 1e-2)),
    "pruning": ((4,), SEEDS[:8], (SHARED_LR,)),
}
FIXED_D_HEAD = 8  # d_head of the fixed_d_head sweep: d_model = 8 h, d_ff = 2 d_model
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)  # "divided" thresholds of the sensitivity check
RANDOM_ORDERS = 10  # random pruning orders per model, the baseline for Michel's order
IMPORTANCE_EXAMPLES = 500  # fresh sequences on which head importance is measured
PROBE_SEEDS = (0, 1, 2)  # seeds whose attention maps on the probe sequences are stored


def versions() -> dict:
    """The package versions that produced a result (Chapter 7)."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "tqdm": tqdm.__version__,
        "mha": mha.__version__,
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """Where a result was computed: CPU, torch's SIMD level, threads, kernel settings."""
    env = {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "OMP_NUM_THREADS")}
    return {
        "cpu": cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "env": env,
    }


def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n"}`` with the sample standard deviation, ddof = 1 (Chapter 7)."""
    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "n": len(values)}


def probe_indices(cfg: Config) -> list[int]:
    """For each marked value, the first test sequence with it away from both ends (Chapter 7)."""
    test = make_data(cfg, cfg.test_size, None, "test")
    value = test.tokens[torch.arange(cfg.test_size), test.marked] - cfg.vocab_size
    inside = (test.marked >= 3) & (test.marked <= cfg.seq_len - 3)
    return [int(torch.nonzero(inside & (value == v))[0]) for v in range(cfg.vocab_size)]


def _head_roles(model, cfg: Config) -> list[dict]:
    """Per layer: relation shares and Voita's offset statistics of every head."""
    test = make_data(cfg, cfg.test_size, None, "test")
    roles = []
    for w in metrics.attention_weights(model, test):  # (N, h, L, L) per layer
        prev, marked = metrics.relation_shares(w, test.marked)
        offset, share = metrics.offset_shares(w, metrics.scored_queries(test))
        roles.append(
            {
                "prev_share": prev.tolist(),
                "marked_share": marked.tolist(),
                "offset": offset.tolist(),
                "offset_share": share.tolist(),
            }
        )
    return roles


def _probe_maps(model, cfg: Config) -> list:
    """Layer-0 weights ``(h, L, L)`` on each probe sequence, rounded to 4 decimals."""
    probes = make_data(cfg, cfg.test_size, None, "test").subset(probe_indices(cfg))
    weights = metrics.attention_weights(model, probes)[0]  # (probes, h, L, L)
    return np.round(weights.numpy(), 4).tolist()


def _division(model, cfg: Config) -> dict:
    """Per-sequence roles of the heads of layer 0 on the test set (see ``metrics``)."""
    test = make_data(cfg, cfg.test_size, None, "test")
    prev, mark = metrics.example_shares(metrics.attention_weights(model, test)[0], test.marked)
    value = test.tokens[torch.arange(cfg.test_size), test.marked] - cfg.vocab_size
    by_value = [
        [t[value == v].mean(0).tolist() for v in range(cfg.vocab_size)] for t in (prev, mark)
    ]
    rates = {
        str(t): metrics.division_of_labour(prev, mark, t).double().mean().item()
        if cfg.num_heads > 1
        else None
        for t in THRESHOLDS
    }
    # with one head no sequence can be divided: the rate is undefined (None), not 0
    return {
        "division_rate": rates["0.5"],
        "division_rate_at": rates,
        "prev_share_by_value": by_value[0],
        "marked_share_by_value": by_value[1],
    }


def specialisation_run(cfg: Config, seed: int, progress: bool) -> dict:
    model, record = train(cfg, seed, progress)
    record |= {"roles": _head_roles(model, cfg), "division": _division(model, cfg)}
    if seed in PROBE_SEEDS:  # the attention maps of Chapter 7's plots (bulky: a few seeds only)
        record["probe_attention"] = _probe_maps(model, cfg)
    return record


def plain_run(cfg: Config, seed: int, progress: bool) -> dict:
    return train(cfg, seed, progress)[1]


def pruning_run(cfg: Config, seed: int, progress: bool) -> dict:
    """Train, then score heads (Michel et al.) and prune them in three orders."""
    model, record = train(cfg, seed, progress)
    test = make_data(cfg, cfg.test_size, None, "test")
    scoring = make_data(cfg, IMPORTANCE_EXAMPLES, seed, "importance")
    importance = metrics.head_importance(model, scoring)
    order = torch.argsort(importance.flatten(), stable=True).tolist()  # least important first
    rng = task_rng(seed, "prune")
    randoms = [rng.permutation(importance.numel()).tolist() for _ in range(RANDOM_ORDERS)]
    return record | {
        "importance": importance.tolist(),
        "importance_raw": metrics.head_importance(model, scoring, normalise=False).tolist(),
        "order": order,
        "prune_by_importance": metrics.pruning_curve(model, test, order),
        "prune_most_important_first": metrics.pruning_curve(model, test, order[::-1]),
        "random_orders": randoms,
        "prune_random": [metrics.pruning_curve(model, test, r) for r in randoms],
        "roles": _head_roles(model, cfg),
    }


SWEEPS = {  # in the order `all` runs them, block by block of seeds: the most important first
    "head_count": specialisation_run,
    "overfitting": plain_run,
    "fixed_d_head": plain_run,
    "pruning": pruning_run,
    "learning_rate": plain_run,
}


def sweep_configs(
    name: str, heads: Sequence[int] | None = None, lrs: Sequence[float] | None = None
) -> list[Config]:
    """The configuration of every point of sweep ``name`` (seeds aside), Chapter 7.

    ``heads`` and ``lrs`` default to those of the committed results
    (``DEFAULTS``); ``fixed_d_head`` sets ``d_model = 8 h`` and ``d_ff = 2 d_model``.
    """
    if name not in SWEEPS:
        raise ValueError(f"sweep must be one of {list(SWEEPS)}, got {name!r}")
    base = CONFIGS[name]
    heads, lrs = tuple(heads or DEFAULTS[name][0]), tuple(lrs or DEFAULTS[name][2])
    if name != "fixed_d_head":
        return [replace(base, num_heads=h, lr=lr) for h in heads for lr in lrs]
    return [
        replace(
            base, num_heads=h, lr=lr, d_model=FIXED_D_HEAD * h, dim_feedforward=2 * FIXED_D_HEAD * h
        )
        for h in heads
        for lr in lrs
    ]


def sweep_jobs(
    name: str,
    heads: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    lrs: Sequence[float] | None = None,
) -> list[tuple[str, Config, int]]:
    """``(sweep, config, seed)`` of every run of a sweep, in the order of its results."""
    seeds = tuple(seeds or DEFAULTS[name][1])
    return [(name, cfg, s) for cfg in sweep_configs(name, heads, lrs) for s in seeds]


def one_thread() -> None:
    """Use one torch thread (each worker of ``python -m mha.experiments`` does)."""
    torch.set_num_threads(1)


def run_job(job: tuple[str, Config, int], progress: bool = False) -> dict:
    """One run of :func:`sweep_jobs`: its JSON-ready record."""
    name, cfg, seed = job
    return SWEEPS[name](cfg, seed, progress)


def sweep_result(
    name: str,
    heads: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    lrs: Sequence[float] | None = None,
    runs: Sequence[dict] | None = None,
) -> dict:
    """The JSON-ready result of a sweep from the records of its :func:`sweep_jobs`.

    ``runs`` may cover only some of ``seeds`` (an unfinished sweep): the result
    keeps every run, lists in ``seeds`` the seeds whose every point is done,
    and says ``"complete": false`` with the ``planned_seeds``.
    """
    heads, planned = tuple(heads or DEFAULTS[name][0]), tuple(seeds or DEFAULTS[name][1])
    points = len(sweep_configs(name, heads, lrs))
    done = [s for s in planned if sum(r["seed"] == s for r in runs) == points]
    return {
        "sweep": name,
        "config": CONFIGS[name].to_dict(),
        "heads": list(heads),
        "seeds": done,
        "planned_seeds": list(planned),
        "complete": len(done) == len(planned),
        "lrs": list(lrs or DEFAULTS[name][2]),
        "versions": versions(),
        "machine": machine(),
        "runs": runs,
    }


def run_sweep(
    name: str,
    heads: Sequence[int] | None = None,
    seeds: Sequence[int] | None = None,
    progress: bool = True,
    lrs: Sequence[float] | None = None,
) -> dict:
    """Run sweep ``name`` over head counts, learning rates and seeds in this process.

    Introduced in Chapter 7. ``heads``, ``seeds`` and ``lrs`` default to those
    of the committed results (``DEFAULTS``); a test passes one of each to
    re-run a slice. ``python -m mha.experiments`` runs the jobs in parallel.
    """
    runs = [run_job(job, progress) for job in sweep_jobs(name, heads, seeds, lrs)]
    return sweep_result(name, heads, seeds, lrs, runs)
