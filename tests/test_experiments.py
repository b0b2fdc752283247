"""Chapter 7: the task, the metrics, the statistics, and re-running one slice of every
committed sweep within the tolerance measured across CPU kernels."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mha.experiments import load_results, metrics, spread, stats
from mha.experiments.spread import KERNELS, SLICES, run_slice
from mha.experiments.sweeps import CONFIGS, DEFAULTS, mean_std, run_sweep
from mha.experiments.tasks import IGNORE, describe, previous_plus_marked, task_rng
from mha.experiments.train import Config, TaskModel, accuracy


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the committed sweeps ran on one thread per worker
    yield
    torch.set_num_threads(before)


def test_task_targets_follow_the_rule():
    data = previous_plus_marked(50, 7, 5, np.random.default_rng(0))
    tokens, targets, marked = (t.numpy() for t in data)
    values = tokens % 5
    assert np.all((tokens >= 5).sum(1) == 1)  # exactly one marked token
    assert np.all(tokens[np.arange(50), marked] >= 5)
    assert np.all(targets[:, 0] == IGNORE)
    expected = (values[:, :-1] + values[np.arange(50), marked][:, None]) % 5
    assert np.array_equal(targets[:, 1:], expected)
    assert describe(tokens[0], 5)[marked[0]].endswith("*")


def test_streams_are_independent_and_seeded():
    a = previous_plus_marked(4, 6, 5, task_rng(3, "train")).tokens
    b = previous_plus_marked(4, 6, 5, task_rng(3, "train")).tokens
    c = previous_plus_marked(4, 6, 5, task_rng(3, "train_set")).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)
    test_1 = previous_plus_marked(4, 6, 5, task_rng(1, "test")).tokens
    assert torch.equal(test_1, previous_plus_marked(4, 6, 5, task_rng(2, "test")).tokens)
    with pytest.raises(ValueError, match="stream"):
        task_rng(0, "validation")
    with pytest.raises(ValueError, match="seq_len"):
        previous_plus_marked(4, 1, 5, task_rng(0, "train"))


def test_relation_shares_and_offsets_on_known_patterns():
    n, length = 3, 6
    marked = torch.tensor([4, 0, 2])
    prev_head = torch.zeros(n, length, length)
    prev_head[:, torch.arange(1, length), torch.arange(length - 1)] = 1.0  # query i -> key i - 1
    prev_head[:, 0, 0] = 1.0
    mark_head = torch.zeros(n, length, length)
    mark_head[torch.arange(n), :, marked] = 1.0  # every query -> the marked key
    weights = torch.stack([prev_head, mark_head], dim=1).double()  # (N, h=2, L, L)
    prev, mark = metrics.relation_shares(weights, marked)
    assert prev.tolist() == [1.0, 0.0] and mark.tolist() == [0.0, 1.0]
    queries = torch.ones(n, length, dtype=torch.bool)
    queries[:, 0] = False
    offset, share = metrics.offset_shares(weights, queries)
    assert offset[0] == -1 and share[0] == 1.0
    assert share[1] < 0.9
    assert metrics.positional_heads(weights, queries).tolist() == [True, False]
    prev_n, mark_n = metrics.example_shares(weights, marked)  # (N, h): the same per sequence
    assert torch.equal(prev_n, prev.expand(n, -1)) and torch.equal(mark_n, mark.expand(n, -1))
    assert metrics.division_of_labour(prev_n, mark_n).all()
    swapped = metrics.division_of_labour(prev_n[:, :1], mark_n[:, :1])  # one head cannot do both
    assert not swapped.any()


def test_importance_and_pruning_shapes():
    torch.manual_seed(0)
    cfg = Config(num_layers=2, num_heads=2, d_model=8, dim_feedforward=16, seq_len=5)
    model = TaskModel(cfg)
    data = previous_plus_marked(20, 5, 5, np.random.default_rng(0))
    importance = metrics.head_importance(model, data, chunk=7)
    assert importance.shape == (2, 2)
    assert torch.allclose(importance.norm(dim=-1), torch.ones(2, dtype=torch.float64))
    curve = metrics.pruning_curve(model, data, [3, 0, 1, 2])
    assert len(curve) == 5 and curve[0] == accuracy(model, data)
    assert all(total == 80 for _, total in curve)


def test_mean_std():
    assert mean_std([1.0, 3.0]) == {"mean": 2.0, "std": math.sqrt(2.0), "n": 2}
    assert mean_std([5.0])["std"] == 0.0


def test_division_needs_two_different_heads_at_any_threshold():
    prev = torch.tensor([[0.45, 0.1], [0.45, 0.45], [0.9, 0.0]], dtype=torch.float64)
    mark = torch.tensor([[0.45, 0.1], [0.1, 0.45], [0.0, 0.9]], dtype=torch.float64)
    assert metrics.division_of_labour(prev, mark, 0.4).tolist() == [False, True, True]
    assert metrics.division_of_labour(prev, mark, 0.5).tolist() == [False, False, True]
    one = metrics.division_of_labour(prev[:, :1], mark[:, :1], 0.3)  # one head: never divided
    assert not one.any()


def test_statistics_against_known_values():
    low, high = stats.success_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 20))  # exact for k = 0
    low, high = stats.success_interval(20, 20)
    assert low == pytest.approx(0.025 ** (1 / 20)) and high == 1.0
    with pytest.raises(ValueError, match="k <= n"):
        stats.success_interval(3, 2)
    paired = stats.paired_successes([True] * 8 + [False] * 12, [True] * 20)
    assert (paired["a_only"], paired["b_only"]) == (0, 12)
    assert paired["p"] == pytest.approx(2 * 0.5**12)  # exact McNemar: binomial on 12 pairs
    assert paired["low"] <= paired["diff"] == -0.6 <= paired["high"] <= 0
    mean, low, high = stats.mean_interval(np.random.default_rng(0).random((20, 3)))
    assert np.all((0 <= low) & (low <= mean) & (mean <= high) & (high <= 1))
    diff = stats.paired_difference(np.arange(20.0), np.arange(20.0) - 1)
    assert (diff["mean"], diff["low"], diff["high"], diff["x_larger"]) == (1.0, 1.0, 1.0, 20)
    assert stats.first_step_at([50, 100, 150], [0.5, 0.99, 1.0]) == 100
    assert stats.adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])  # BH by hand
    assert stats.adjusted([]) == []
    assert stats.first_step_at([50, 100], [0.5, 0.9]) is None


def test_load_results_unknown():
    with pytest.raises(ValueError, match="no committed result"):
        load_results("nonexistent")


def tolerance() -> tuple[float, int]:
    """10x the spread measured across kernels, threads and machines (``spread.tolerance``)."""
    return spread.tolerance(load_results("kernel_spread"))


EXACT = {"num_heads", "d_model", "lr", "seed", "num_params", "test_total", "train_total",
         "step", "random_orders"}  # fmt: skip  # the same on every CPU


def assert_close(got, want, tol: tuple[float, int], path: str = "run") -> None:
    """Settings and counts in ``EXACT`` exactly; floats and other counts within ``tol``."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            assert_close(got[key], want[key], tol, f"{path}.{key}")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, tol, f"{path}[{i}]")
    elif want is None or isinstance(want, str | bool):
        assert got == want, path
    elif path.rsplit(".", 1)[-1].split("[")[0] in EXACT:
        assert got == want, path
    elif isinstance(want, float):
        scale = 1e-4 if "probe_attention" in path else 0.0  # maps are rounded to 4 decimals
        assert got == pytest.approx(want, rel=tol[0], abs=scale), path
    else:
        assert abs(got - want) <= tol[1], path


@pytest.mark.parametrize("name", list(SLICES))
def test_committed_slice_reproduces(name, one_thread):
    committed = load_results(name)
    assert committed["config"] == CONFIGS[name].to_dict()
    assert committed["heads"] == list(DEFAULTS[name][0])
    assert committed["planned_seeds"] == list(DEFAULTS[name][1])
    assert committed["command"] == f"python -m mha.experiments {name}"
    assert committed["complete"] == (committed["seeds"] == committed["planned_seeds"])
    heads, seed = SLICES[name]
    if seed not in committed["seeds"]:
        pytest.skip(
            f"{name}: seed {seed} is not in the committed results (the sweep is unfinished)"
        )
    lr = DEFAULTS[name][2][0]
    fresh = run_sweep(name, heads=[heads], seeds=[seed], progress=False, lrs=[lr])["runs"][0]
    (want,) = [r for r in committed["runs"]
               if (r["num_heads"], r["seed"], r["lr"]) == (heads, seed, lr)]  # fmt: skip
    assert_close(fresh, want, tolerance())


def test_tolerance_is_measured_not_guessed():
    measured = load_results("kernel_spread")
    assert set(measured["kernels"]) <= set(KERNELS)
    assert set(measured["slices"]) == set(SLICES)  # the slice of every sweep is measured
    settings = set(measured["kernels"]) | set(measured["unavailable"])
    assert {"native, 2 threads", "default, MKL compatible", "avx2, MKL avx2, 2 threads"} <= settings
    for name, s in measured["slices"].items():  # each measured slice is the committed run
        (run,) = [r for r in load_results(name)["runs"] if (r["num_heads"], r["seed"]) == (s["heads"], s["seed"])
                  and r["lr"] == DEFAULTS[name][2][0]]  # fmt: skip
        assert s["test_correct"]["native"] == run["test_correct"]
    rel, _ = tolerance()
    assert 0 < rel < 1e-2  # the runs move, but little


def test_kernel_settings_the_cpu_lacks_are_skipped_not_run(monkeypatch):
    monkeypatch.setattr(spread, "cpu_flags", lambda: {"sse2", "avx", "avx2"})
    monkeypatch.setattr(spread, "capability", lambda env: "AVX2")
    runnable, missing = spread.available(list(KERNELS))
    assert "avx512, MKL auto" in missing and "avx512f" in missing["avx512, MKL auto"]
    assert "avx2, MKL avx2, 2 threads" in runnable and "default, MKL compatible" in runnable
    monkeypatch.setattr(spread, "cpu_flags", lambda: {"sse2"})
    assert "avx2, MKL avx2, 2 threads" in spread.available(list(KERNELS))[1]


def test_slice_under_a_forced_non_native_kernel():
    """One slice in a fresh interpreter on torch's default (no SIMD) kernels and MKL's
    compatible branch: it must match the committed run within tolerance."""
    env = KERNELS["default, MKL compatible"]
    heads, seed = SLICES["head_count"]
    fresh = run_slice("head_count", heads, seed, env)
    assert fresh["machine"]["torch_cpu_capability"] == "DEFAULT"
    assert fresh.pop("machine")["torch_threads"] == 1
    (want,) = [r for r in load_results("head_count")["runs"]
               if (r["num_heads"], r["seed"]) == (heads, seed)]  # fmt: skip
    assert_close(fresh, want, tolerance())


def test_results_json_format_round_trips():
    from mha.experiments.__main__ import dumps

    data = {"a": [1, 2.5, -3e-05], "b": [[0.1, 0.2], []], "c": {"s": ["x", 1]}}
    text = dumps(data)
    assert json.loads(text) == data
    assert '"a": [1, 2.5, -3e-05]' in text  # lists of numbers stay on one line


def test_cli_rejects_unknown_sweep():
    from mha.experiments.__main__ import main

    with pytest.raises(SystemExit):
        main(["everything"])


def test_chapter_7_under_a_forced_non_native_kernel():
    """Strict nbval of Chapter 7 in a fresh process on torch's portable kernels and MKL's
    compatible branch: the chapter prints only what is stable across kernels."""
    root = Path(__file__).resolve().parent.parent
    env = os.environ | {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
               "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
               "chapters/07_experiments.ipynb"]  # fmt: skip
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
