"""The exercise checkers: pass the reference, name every classic bug, survive bad code.

For each checker, the learner-style implementations below contain exactly one
classic bug each; the checker must fail them and print that bug's message.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

import mha
from mha.attention import scaled_dot_product_attention, softmax
from mha.grading import checks, encoder_checks
from mha.heads import merge_heads, split_heads
from mha.reference import multi_head_attention_forward

FAST = 2.0  # time limit (s) for the checks in these tests


# --- Chapter 1: softmax --------------------------------------------------------------------


def softmax_ref(x, axis=-1):
    return softmax(x, axis)


def softmax_torch(x, axis=-1):
    return torch.nan_to_num(torch.softmax(torch.from_numpy(np.asarray(x)), dim=axis))


def softmax_wrong_axis(x, axis=-1):
    e = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def softmax_whole_array(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def softmax_no_max(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def softmax_neg_inf_row(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# --- Chapter 1: attention ------------------------------------------------------------------


def attention_ref(q, k, v, mask=None):
    return scaled_dot_product_attention(q, k, v, mask)


def attention_torch(q, k, v, mask=None):
    q, k, v = (torch.from_numpy(t) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(torch.from_numpy(mask), float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def _attention(q, k, v, mask=None, scale=None, axis=-1, keep=False, after=False, swap=False):
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / (np.sqrt(d) if scale is None else scale(d))
    if mask is not None and not after:
        scores = np.where(mask, scores, -np.inf) if keep else np.where(mask, -np.inf, scores)
    weights = softmax(scores, axis)
    if mask is not None and after:
        weights = weights * ~mask
    return (weights, weights @ v) if swap else (weights @ v, weights)


BUGGY_ATTENTION = {
    "no_scale": lambda q, k, v, mask=None: _attention(q, k, v, mask, scale=lambda d: 1.0),
    "scale_d": lambda q, k, v, mask=None: _attention(q, k, v, mask, scale=lambda d: d),
    "wrong_axis": lambda q, k, v, mask=None: _attention(q, k, v, mask, axis=-2),
    "mask_inverted": lambda q, k, v, mask=None: _attention(q, k, v, mask, keep=True),
    "mask_ignored": lambda q, k, v, mask=None: _attention(q, k, v),
    "mask_after_softmax": lambda q, k, v, mask=None: _attention(q, k, v, mask, after=True),
    "swapped": lambda q, k, v, mask=None: _attention(q, k, v, mask, swap=True),
}


# --- Chapters 2 to 4 -----------------------------------------------------------------------


def head_projections_ref(x, w, num_heads):
    d_head = w.shape[0] // num_heads
    return np.stack([x @ w[i * d_head : (i + 1) * d_head].T for i in range(num_heads)])


def head_projections_columns(x, w, num_heads):
    d_head = w.shape[0] // num_heads
    return np.stack([x @ w[:, i * d_head : (i + 1) * d_head] for i in range(num_heads)])


def head_projections_seq_reshape(x, w, num_heads):
    return (x @ w.T).reshape(num_heads, x.shape[0], -1)


def head_projections_seq_chunks(x, w, num_heads):
    y = x @ w.T
    return y.reshape(num_heads, -1, y.shape[1])


def split_ref(x, num_heads):
    n, length, e = x.shape
    return x.reshape(n, length, num_heads, e // num_heads).swapaxes(1, 2)


BUGGY_SPLIT = {
    "no_transpose": lambda x, h: x.reshape(x.shape[0], h, x.shape[1], -1),
    "no_transpose_shape": lambda x, h: x.reshape(x.shape[0], x.shape[1], h, -1),
    "interleaved": lambda x, h: x.reshape(*x.shape[:2], -1, h).transpose(0, 3, 1, 2),
}


def merge_ref(x):
    t = torch.from_numpy(x)
    return t.transpose(1, 2).flatten(2)  # a tensor: checkers accept torch results


BUGGY_MERGE = {
    "no_transpose": lambda x: x.reshape(x.shape[0], x.shape[2], -1),
    "reversed": lambda x: np.concatenate(list(x.transpose(1, 0, 2, 3))[::-1], axis=-1),
    "interleaved": lambda x: x.transpose(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1),
}


# --- Chapter 5 -----------------------------------------------------------------------------


def mha_student(x, w_qkv, w_o, num_heads, bug=None):
    """A learner-style multi-head attention with one optional bug."""
    n, length, e = x.shape
    d_head = e // num_heads
    w_q, w_k, w_v = np.split(w_qkv, 3)
    lin = (lambda t, w: t @ w) if bug == "weights_not_transposed" else (lambda t, w: t @ w.T)
    q, k, v = lin(x, w_q), lin(x, w_k), lin(x, w_v)
    if bug in ("split_no_transpose", "both_no_transpose"):
        q, k, v = (t.reshape(n, num_heads, length, d_head) for t in (q, k, v))
    else:
        q, k, v = (t.reshape(n, length, num_heads, d_head).swapaxes(1, 2) for t in (q, k, v))
    d = {"scale_d_model": e, "no_scale": 1}.get(bug, d_head)
    weights = softmax(q @ k.swapaxes(-1, -2) / np.sqrt(d), axis=-2 if bug == "wrong_axis" else -1)
    heads = weights @ v
    if bug in ("merge_no_transpose", "both_no_transpose"):
        concat = heads.reshape(n, length, e)
    else:
        concat = heads.swapaxes(1, 2).reshape(n, length, e)
    return concat if bug == "no_out_proj" else lin(concat, w_o)


def mha_ref(x, w_qkv, w_o, num_heads):
    return multi_head_attention_forward(x, x, x, num_heads, w_qkv, None, w_o, None)[0]


def mha_torch(x, w_qkv, w_o, num_heads):
    e = x.shape[-1]
    layer = torch.nn.MultiheadAttention(e, num_heads, bias=False, batch_first=True).double()
    with torch.no_grad():
        layer.in_proj_weight.copy_(torch.from_numpy(w_qkv))
        layer.out_proj.weight.copy_(torch.from_numpy(w_o))
    t = torch.from_numpy(x)
    return layer(t, t, t, need_weights=False)[0]


BUGGY_CAUSAL = {
    "future_leak": lambda n: np.tril(np.ones((n, n), dtype=bool), k=-1),
    "next_token_leak": lambda n: np.triu(np.ones((n, n), dtype=bool), k=2),
    "diag_blocked": lambda n: np.triu(np.ones((n, n), dtype=bool)),
    "inverted": lambda n: np.tril(np.ones((n, n), dtype=bool)),
    "nothing_blocked": lambda n: np.zeros((n, n), dtype=bool),
}


def padding_ref(key_padding_mask, num_heads, length):
    m = torch.from_numpy(key_padding_mask).repeat_interleave(num_heads, dim=0)  # (N*h, S)
    return m[:, None, :].expand(-1, length, -1)


def padding_tiled(key_padding_mask, num_heads, length):
    m = torch.from_numpy(key_padding_mask).repeat(num_heads, 1)  # the classic bug
    return m[:, None, :].expand(-1, length, -1)


BUGGY_PADDING = {
    "tiled": padding_tiled,
    "inverted": lambda m, h, n: ~padding_ref(m, h, n),
    "tiled_inverted": lambda m, h, n: ~padding_tiled(m, h, n),
    "rows": lambda m, h, n: np.repeat(m, h, axis=0)[:, :, None].repeat(n, axis=2),
}


# --- The table of checkers -----------------------------------------------------------------

CHECKERS = {
    "check_softmax": (
        [softmax_ref, softmax_torch],
        {
            "wrong_axis": softmax_wrong_axis,
            "whole_array": softmax_whole_array,
            "no_max": softmax_no_max,
            "neg_inf_row": softmax_neg_inf_row,
        },
        checks._SOFTMAX_BUGS,
    ),
    "check_attention": ([attention_ref, attention_torch], BUGGY_ATTENTION, checks._ATTENTION_BUGS),
    "check_head_projections": (
        [head_projections_ref],
        {
            "columns": head_projections_columns,
            "seq_reshape": head_projections_seq_reshape,
            "seq_chunks": head_projections_seq_chunks,
        },
        checks._HEAD_PROJECTION_BUGS,
    ),
    "check_split_heads": ([split_ref, split_heads], BUGGY_SPLIT, checks._SPLIT_BUGS),
    "check_merge_heads": ([merge_ref, merge_heads], BUGGY_MERGE, checks._MERGE_BUGS),
    "check_multi_head_attention": (
        [mha_ref, mha_torch, mha_student],
        {bug: (lambda b: lambda *a: mha_student(*a, bug=b))(bug) for bug in checks._MHA_BUGS},
        checks._MHA_BUGS,
    ),
    "check_causal_mask": (
        [lambda n: np.triu(np.ones((n, n), dtype=bool), k=1), mha.causal_mask],
        BUGGY_CAUSAL,
        checks._CAUSAL_BUGS,
    ),
    "check_expand_padding_mask": ([padding_ref], BUGGY_PADDING, checks._PADDING_BUGS),
}


CHAPTERS = {"check_softmax": 1, "check_attention": 1, "check_head_projections": 2,
            "check_split_heads": 3, "check_merge_heads": 4, "check_multi_head_attention": 5,
            "check_causal_mask": 5, "check_expand_padding_mask": 5}  # fmt: skip


def test_every_checker_of_the_contract_exists():
    later = set(encoder_checks.__all__)  # Chapters 6 and 7: tests/test_encoder_checks.py
    assert sorted(CHECKERS) == sorted(
        n for n in checks.__all__ if n.startswith("check_") and n not in later
    )
    assert later <= set(checks.__all__) and sorted(checks.EXERCISES) == sorted(
        n for n in checks.__all__ if n.startswith("check_")
    )
    assert all(f"Chapter {n}" in getattr(checks, c).__doc__ for c, n in CHAPTERS.items())


@pytest.mark.parametrize(
    ("checker", "index"),
    [(c, i) for c, (refs, _, _) in CHECKERS.items() for i in range(len(refs))],
)
def test_reference_solutions_pass(checker, index, capsys):
    assert getattr(checks, checker)(CHECKERS[checker][0][index], time_limit=FAST * 5) is True
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("checker", "bug"), [(c, b) for c, (_, bugs, _) in CHECKERS.items() for b in bugs]
)
def test_each_classic_bug_is_named(checker, bug, capsys):
    _, buggy, messages = CHECKERS[checker]
    assert getattr(checks, checker)(buggy[bug], time_limit=FAST * 5) is False
    out = capsys.readouterr().out
    assert "❌" in out
    assert messages[bug][:60] in out, out
    others = [m for name, m in messages.items() if name != bug and m[:60] in out]
    assert not others, f"other bugs named too: {others}"


def test_bug_messages_are_distinct():
    for _, _, messages in CHECKERS.values():
        assert len({m[:60] for m in messages.values()}) == len(messages)


# --- Bad code: every kind produces a clear message and never raises ----------------------


def _corrupt(reference, how):
    """A function that runs the reference, then spoils its result in one way."""

    def spoil(value):
        arr = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if how == "shape":
            return arr[..., :1]
        if how == "dtype":
            return arr.astype(np.int64) + 2
        return np.full(arr.shape, np.nan)  # "nan"

    def student(*args):
        result = reference(*args)
        if isinstance(result, tuple):
            return (spoil(result[0]), *result[1:])
        return spoil(result)

    return student


def _raises(*args):
    raise ValueError("something went wrong in my code")


def _loops(*args):
    while True:
        pass


BAD_CODE = {
    "raises": (lambda ref: _raises, "raised ValueError: something went wrong in my code"),
    "not_implemented": (lambda ref: _not_implemented, "is not implemented yet"),
    "none": (lambda ref: lambda *a: None, "did you forget the `return` statement?"),
    "shape": (lambda ref: _corrupt(ref, "shape"), "the result has shape"),
    "dtype": (lambda ref: _corrupt(ref, "dtype"), "dtype int64"),
    "nan": (lambda ref: _corrupt(ref, "nan"), ""),
    "loop": (lambda ref: _loops, "did not finish within 1 s"),
    "not_callable": (lambda ref: np.zeros(3), "expected a function"),
}


def _not_implemented(*args):
    raise NotImplementedError()


@pytest.mark.parametrize(
    ("checker", "kind"), [(c, k) for c in CHECKERS for k in BAD_CODE if k != "loop"]
)
def test_bad_code_gives_a_clear_message(checker, kind, capsys):
    make, expected = BAD_CODE[kind]
    assert getattr(checks, checker)(make(CHECKERS[checker][0][0]), time_limit=FAST * 5) is False
    out = capsys.readouterr().out
    assert out.startswith("❌") and expected.lower() in out.lower(), out
    if kind == "nan":  # masks are bool: a float NaN array is a dtype problem there
        assert "NaN" in out or "dtype float64, expected bool" in out, out


@pytest.mark.parametrize("checker", ["check_softmax", "check_expand_padding_mask"])
def test_infinite_loop_is_stopped(checker, capsys):
    start = time.perf_counter()
    assert getattr(checks, checker)(_loops, time_limit=1) is False
    assert time.perf_counter() - start < 5
    assert "did not finish within 1 s" in capsys.readouterr().out


def test_exit_and_crash_and_odd_results(capsys):
    assert checks.check_causal_mask(lambda n: os._exit(3), time_limit=FAST) is False
    assert "stopped unexpectedly" in capsys.readouterr().out
    assert checks.check_causal_mask(lambda n: exit(), time_limit=FAST) is False
    assert "raised SystemExit" in capsys.readouterr().out
    assert checks.check_causal_mask(lambda n: (i for i in range(n)), time_limit=FAST) is False
    assert "could not be read back" in capsys.readouterr().out
    assert checks.check_attention(lambda q, k, v, mask=None: q, time_limit=FAST) is False
    assert "should return 2 results as a tuple" in capsys.readouterr().out


def test_quiet_prints_nothing_and_printing_code_is_reported(capsys):
    assert checks.check_merge_heads(merge_heads, quiet=True) is True
    assert capsys.readouterr().out == ""

    def noisy(x):
        print("debugging!")
        return x

    assert checks.check_merge_heads(noisy) is False
    assert "debugging!" in capsys.readouterr().out


def test_error_hint_and_location(capsys):
    def no_keepdims(x, axis=-1):
        return np.exp(x - x.max(axis)) / np.exp(x - x.max(axis)).sum(axis)

    assert checks.check_softmax(no_keepdims) is False
    out = capsys.readouterr().out
    assert "keepdims=True" in out and "np.exp(x - x.max(axis))" in out


def test_thread_fallback_without_fork(monkeypatch, capsys):
    monkeypatch.setattr(
        checks.isolation.multiprocessing, "get_all_start_methods", lambda: ["spawn"]
    )
    assert checks.check_split_heads(split_heads) is True
    assert checks.check_split_heads(lambda x, h: time.sleep(1.5), time_limit=0.3) is False
    assert "did not finish within 0.3 s" in capsys.readouterr().out


def test_torch_threads_after_fork_do_not_deadlock():
    a = torch.randn(300, 300)
    (a @ a).sum()  # the parent's intra-op thread pool is now running

    def uses_torch(x, axis=-1):
        b = torch.randn(200, 200)
        (b @ b).sum()
        return softmax_torch(x, axis)

    assert checks.check_softmax(uses_torch, time_limit=FAST * 5) is True


def test_checkers_inside_a_jupyter_kernel():
    """Fork, time limit and printed verdicts work in a real kernel, as in the notebooks."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import numpy as np, torch\nimport mha.grading.checks\nt = torch.randn(200, 200); _ = t @ t",
        "def my_softmax(x, axis=-1):\n    while True:\n        pass",
        "ok = mha.grading.checks.check_softmax(my_softmax, time_limit=1)",
        "def my_causal_mask(L):\n    return torch.ones(L, L, dtype=torch.bool).triu(1)",
        "ok2 = mha.grading.checks.check_causal_mask(my_causal_mask)\nprint(ok, ok2)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    text = lambda i: "".join(o.get("text", "") for o in nb.cells[i].outputs)  # noqa: E731
    assert "did not finish within 1 s" in text(2)
    assert "✅ my_causal_mask passed" in text(4) and "False True" in text(4)


def test_feedback_keeps_the_function_name_lower_case(capsys):
    def my_softmax(x, axis=-1):
        raise ValueError("something went wrong")

    assert checks.check_softmax(my_softmax) is False
    out = capsys.readouterr().out
    assert "   my_softmax raised ValueError" in out and "My_softmax" not in out, out
