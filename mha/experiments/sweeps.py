"""Chapter 7: the four sweeps, each a function that returns a JSON-ready dict.

``python -m mha.experiments <sweep>`` runs one and writes
``mha/results/<sweep>.json``; Chapter 7 loads those files and plots them;
``tests/test_experiments.py`` re-runs one slice of each and compares.

* ``specialisation``: 1, 2 and 4 heads at the same ``d_model``; accuracy and
  the share of each head's attention on each relation of the task;
* ``head_count``: h = 1, 2, 4, 8, 16 at ``d_model = 32``, longer sequences;
* ``overfitting``: the same head counts on a small fixed training set;
* ``pruning``: 2 layers x 4 heads; Michel et al.'s importance, pruning curves
  and Voita et al.'s positional heads.
"""

from __future__ import annotations

import platform
from dataclasses import replace

import numpy as np
import torch
import tqdm

import mha
from mha.experiments import metrics
from mha.experiments.tasks import task_rng
from mha.experiments.train import Config, make_data, train

__all__ = ["SWEEPS", "CONFIGS", "DEFAULTS", "run_sweep", "versions", "mean_std", "probe_indices"]

CONFIGS = {
    "specialisation": Config(seq_len=10, vocab_size=5),
    "head_count": Config(seq_len=16, vocab_size=8),
    "overfitting": Config(seq_len=10, vocab_size=5, train_size=200, batch_size=32),
    "pruning": Config(num_layers=2, num_heads=4, seq_len=10, vocab_size=5),
}
DEFAULTS = {  # (head counts, seeds) of the committed results
    "specialisation": ((1, 2, 4), (0, 1, 2, 3, 4)),
    "head_count": ((1, 2, 4, 8, 16), (0, 1, 2, 3, 4)),
    "overfitting": ((1, 2, 4, 8, 16), (0, 1, 2, 3, 4)),
    "pruning": ((4,), (0, 1, 2)),
}
RANDOM_ORDERS = 10  # random pruning orders per model, the baseline for Michel's order
IMPORTANCE_EXAMPLES = 500  # fresh sequences on which head importance is measured
PROBE_SEEDS = (0,)  # seeds whose attention maps on the probe sequences are stored


def versions() -> dict:
    """The package versions that produced a result (Chapter 7)."""
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "tqdm": tqdm.__version__, "mha": mha.__version__}  # fmt: skip


def mean_std(values) -> dict:
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
        roles.append({"prev_share": prev.tolist(), "marked_share": marked.tolist(),
                      "offset": offset.tolist(), "offset_share": share.tolist()})  # fmt: skip
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
    return {"division_rate": metrics.division_of_labour(prev, mark).double().mean().item(),
            "prev_share_by_value": by_value[0], "marked_share_by_value": by_value[1]}  # fmt: skip


def specialisation_run(cfg: Config, seed: int, progress: bool) -> dict:
    model, record = train(cfg, seed, progress)
    record |= {"roles": _head_roles(model, cfg), "division": _division(model, cfg)}
    if seed in PROBE_SEEDS:  # the attention maps of Chapter 7's plots (bulky: one seed only)
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


SWEEPS = {
    "specialisation": specialisation_run,
    "head_count": plain_run,
    "overfitting": plain_run,
    "pruning": pruning_run,
}


def run_sweep(name: str, heads=None, seeds=None, progress: bool = True) -> dict:
    """Run sweep ``name`` over head counts and seeds; return the JSON-ready result.

    Introduced in Chapter 7. ``heads`` and ``seeds`` default to those of the
    committed results (``DEFAULTS``); a test passes one of each to re-run a slice.
    """
    if name not in SWEEPS:
        raise ValueError(f"sweep must be one of {list(SWEEPS)}, got {name!r}")
    default_heads, default_seeds = DEFAULTS[name]
    heads, seeds = tuple(heads or default_heads), tuple(seeds or default_seeds)
    runs = [SWEEPS[name](replace(CONFIGS[name], num_heads=h), s, progress)
            for h in heads for s in seeds]  # fmt: skip
    return {"sweep": name, "config": CONFIGS[name].to_dict(), "heads": list(heads),
            "seeds": list(seeds), "versions": versions(), "torch_threads": torch.get_num_threads(),
            "runs": runs, "summary": _summary(runs, heads)}  # fmt: skip


def _summary(runs: list[dict], heads) -> dict:
    """Mean and std over seeds of the final test (and train) accuracy, per head count."""
    out = {}
    for h in heads:
        mine = [r for r in runs if r["num_heads"] == h]
        test = [r["test_correct"] / r["test_total"] for r in mine]
        final_loss = [r["curve"][-1]["test_loss"] for r in mine]
        out[str(h)] = {"test_acc": mean_std(test), "test_loss": mean_std(final_loss)}
        if "train_correct" in mine[0]:
            train = [r["train_correct"] / r["train_total"] for r in mine]
            out[str(h)]["train_acc"] = mean_std(train)
            out[str(h)]["gap"] = mean_std(np.subtract(train, test))
    return out
