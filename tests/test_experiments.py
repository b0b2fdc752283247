"""Chapter 7: the task, the metrics, and re-running one slice of every committed sweep."""

import json
import math

import numpy as np
import pytest
import torch

from mha.experiments import load_results, metrics
from mha.experiments.sweeps import CONFIGS, DEFAULTS, mean_std, run_sweep
from mha.experiments.tasks import IGNORE, describe, previous_plus_marked, task_rng
from mha.experiments.train import Config, TaskModel, accuracy


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the committed sweeps ran on one thread
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


def test_load_results_unknown():
    with pytest.raises(ValueError, match="no committed result"):
        load_results("nonexistent")


def assert_same(got, want, path="run"):
    """Integers and strings exactly; floats to 1e-9 (1e-4 for the rounded attention maps)."""
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        tol = 1e-4 if "probe_attention" in path else 1e-9
        assert got == pytest.approx(want, rel=tol, abs=tol), path
    else:
        assert got == want, path


SLICES = {"specialisation": (2, 0), "head_count": (2, 0), "overfitting": (8, 0), "pruning": (4, 0)}


@pytest.mark.parametrize("name", list(SLICES))
def test_committed_slice_reproduces(name, one_thread):
    committed = load_results(name)
    assert committed["config"] == CONFIGS[name].to_dict()
    assert committed["heads"] == list(DEFAULTS[name][0])
    assert committed["seeds"] == list(DEFAULTS[name][1])
    assert committed["command"].startswith(f"python -m mha.experiments {name}")
    heads, seed = SLICES[name]
    fresh = run_sweep(name, heads=[heads], seeds=[seed], progress=False)["runs"][0]
    (want,) = [r for r in committed["runs"] if r["num_heads"] == heads and r["seed"] == seed]
    assert_same(fresh, want)


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
