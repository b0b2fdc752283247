"""Exercise checkers: run a learner's function, compare it with ``mha``, name the bug.

Every coding exercise of the course asks for one function (``my_softmax``,
``my_attention``, ...). The matching checker here, for example
``mha.grading.checks.check_softmax(my_softmax)``, runs that function on several inputs,
edge cases included, compares each result with the reference in ``mha``, prints
a friendly verdict and returns ``True`` or ``False``. It never raises.

When a result is wrong, the checker also runs the classic buggy variants of
the exercise on the same inputs (scaling by ``sqrt(d_model)``, reshaping
without transposing, a mask with the wrong convention, ...). If the learner's
output equals one of them, the verdict names that bug.

The learner's function runs in a separate process (``fork``) with a time
limit, so an exception, an infinite loop or a crash cannot take the notebook
(or the autograder) down with it. Where ``fork`` is not available it runs in a
thread: an infinite loop is then reported but keeps running in the background.

The shared machinery comes first; one small checker per exercise follows.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mha.attention import softmax
from mha.heads import merge_heads, project, split_heads
from mha.reference import multi_head_attention_forward

__all__ = [
    "TIME_LIMIT",
    "Case",
    "evaluate",
    "run_isolated",
    "check_softmax",
    "check_attention",
    "check_head_projections",
    "check_split_heads",
    "check_merge_heads",
    "check_multi_head_attention",
    "check_causal_mask",
    "check_expand_padding_mask",
]

TIME_LIMIT = 10.0  # seconds for all the calls of one check together
PASS, FAIL = "✅", "❌"
MAX_MESSAGES = 3  # distinct problems shown at once


# ---------------------------------------------------------------------------
# Running the learner's code in isolation
# ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one call of the learner's function produced."""

    ok: bool
    value: object = None  # the result (arrays and tensors as NumPy) when ok
    error: str = ""  # "TypeError: ..." when it raised
    error_type: str = ""
    where: str = ""  # the learner's line that raised, when known


@dataclass
class Run:
    """All calls of one check: outcomes, or why there are none."""

    outcomes: list[Outcome] = field(default_factory=list)
    problem: str = ""  # "timeout", "crash" or "" when outcomes are complete
    detail: str = ""
    printed: str = ""  # what the learner's code printed (tail)


def _plain(value):
    """Tensors to NumPy (recursively in tuples and lists), so results pickle cheaply."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    if isinstance(value, tuple | list):
        return type(value)(_plain(v) for v in value)
    return value


def _where(exc: BaseException) -> str:
    """The last line of the traceback outside this module: the learner's line."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    if not frames or not frames[-1].line:
        return ""
    return f"line {frames[-1].lineno}: {frames[-1].line.strip()}"


def _call_all(fn: Callable, calls: Sequence[tuple]) -> list[Outcome]:
    """Call ``fn(*args)`` for each argument tuple, catching everything."""
    outcomes = []
    for args in calls:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                outcomes.append(Outcome(True, _plain(fn(*args))))
        except BaseException as exc:  # the learner's code may raise anything
            msg = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            outcomes.append(Outcome(False, None, msg, type(exc).__name__, _where(exc)))
    return outcomes


def _child(conn, fn: Callable, calls: Sequence[tuple]) -> None:
    """Body of the forked process: run, send the outcomes back, exit at once."""
    buffer = io.StringIO()
    sys.stdout = sys.stderr = buffer
    if "torch" in sys.modules:  # a thread pool inherited through fork would deadlock
        sys.modules["torch"].set_num_threads(1)
    try:
        outcomes = _call_all(fn, calls)
        try:
            conn.send((outcomes, buffer.getvalue()[-2000:]))
        except Exception as exc:  # for example a result that cannot be pickled
            bad = Outcome(False, None, f"the result could not be read back ({exc})", "Result")
            conn.send(([bad] * len(calls), buffer.getvalue()[-2000:]))
    finally:
        os._exit(0)  # skip atexit handlers inherited from the notebook's kernel


def _run_forked(fn: Callable, calls: Sequence[tuple], time_limit: float) -> Run:
    """Run the calls in a forked process; kill it after ``time_limit`` seconds."""
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, fn, calls), daemon=True)
    proc.start()
    sender.close()
    try:
        if not receiver.poll(time_limit):
            return Run(problem="timeout")
        outcomes, printed = receiver.recv()
        return Run(outcomes, printed=printed)
    except (EOFError, OSError):
        proc.join(1)
        return Run(problem="crash", detail=f"exit code {proc.exitcode}")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(1)
        receiver.close()


def _run_threaded(fn: Callable, calls: Sequence[tuple], time_limit: float) -> Run:
    """Fallback without ``fork``: a daemon thread (a runaway loop cannot be stopped)."""
    box: list = []
    thread = threading.Thread(target=lambda: box.append(_call_all(fn, calls)), daemon=True)
    thread.start()
    thread.join(time_limit)
    return Run(box[0]) if box else Run(problem="timeout")


def run_isolated(fn: Callable, calls: Sequence[tuple], time_limit: float = TIME_LIMIT) -> Run:
    """Call ``fn(*args)`` for every tuple in ``calls`` away from the notebook's process."""
    if "fork" in multiprocessing.get_all_start_methods():
        return _run_forked(fn, calls, time_limit)
    return _run_threaded(fn, calls, time_limit)


# ---------------------------------------------------------------------------
# Comparing results and naming bugs
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """One input for the learner's function, the expected result, and the bugs' results.

    ``bugs`` maps a bug's name to what that buggy variant returns on this input
    (or a list of such results when the bug has several forms).
    """

    label: str
    args: tuple
    expected: object
    bugs: dict = field(default_factory=dict)


def _array(value) -> np.ndarray | None:
    """``value`` as a NumPy array, or ``None`` when it is not array-like."""
    if value is None or isinstance(value, str | dict):
        return None
    try:
        arr = np.asarray(value)
    except Exception:
        return None
    return None if arr.dtype == object else arr


def _same(got, want) -> bool:
    """Equal shapes and values (close for floats; NaN equals NaN); tuples pairwise."""
    if isinstance(want, tuple):
        if not isinstance(got, tuple | list) or len(got) != len(want):
            return False
        return all(_same(g, w) for g, w in zip(got, want, strict=True))
    got, want = _array(got), np.asarray(want)
    if got is None or got.shape != want.shape:
        return False
    if want.dtype == np.bool_ or got.dtype == np.bool_:
        return got.dtype == want.dtype and bool(np.array_equal(got, want))
    if not np.issubdtype(got.dtype, np.number):
        return False
    return bool(np.allclose(got, want, rtol=1e-6, atol=1e-9, equal_nan=True))


def _informative(case: Case, name: str) -> list:
    """The outputs of bug ``name`` on ``case`` that differ from the expected result."""
    outputs = case.bugs[name]
    options = outputs if isinstance(outputs, list) else [outputs]
    return [o for o in options if not _same(o, case.expected)]


def _matching_bugs(got, case: Case) -> list[str]:
    """Names of the bugs whose output on ``case`` equals ``got`` (and not the expected)."""
    return [name for name in case.bugs if any(_same(got, o) for o in _informative(case, name))]


def _bug_scores(cases: Sequence[Case], outcomes: Sequence[Outcome]) -> dict[str, int]:
    """+1 for each input where a bug explains the result, -1 where it is ruled out."""
    scores: dict[str, int] = {}
    for case, outcome in zip(cases, outcomes, strict=True):
        for name in case.bugs if outcome.ok else ():
            if options := _informative(case, name):
                hit = any(_same(outcome.value, o) for o in options)
                scores[name] = scores.get(name, 0) + (1 if hit else -1)
    return scores


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _structure_problem(got, want) -> str:
    """Why ``got`` cannot be compared with ``want`` (None, type, shape, dtype, NaN), or ''."""
    if got is None:
        return "it returned None: did you forget the `return` statement?"
    if isinstance(want, tuple):
        if not isinstance(got, tuple | list) or len(got) != len(want):
            kind = type(got).__name__
            return f"it should return {len(want)} results as a tuple, but it returned a {kind}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if problem := _structure_problem(g, w):
                return f"result {i + 1} of the tuple: {problem}"
        return ""
    arr, want = _array(got), np.asarray(want)
    if arr is None:
        return f"it returned a {type(got).__name__}, not an array"
    if arr.shape != want.shape:
        return f"the result has shape {_shape_text(arr.shape)}, expected {_shape_text(want.shape)}"
    if want.dtype == np.bool_ and arr.dtype != np.bool_:
        return (
            f"the mask has dtype {arr.dtype}, expected bool (True = blocked). A float mask "
            "is *added* to the scores, so 0/1 values would not block anything"
        )
    if want.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.floating):
        return f"the result has dtype {arr.dtype}, expected a floating-point array"
    if want.dtype == np.float64 and arr.dtype != np.float64 and not _same(arr, want):
        return (
            f"the result has dtype {arr.dtype} but the inputs are float64: keep float64 "
            "(torch.from_numpy keeps it; torch.tensor(..., dtype=torch.float32) does not)"
        )
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any() and not np.isnan(want).any():
        return "the result contains NaN (not a number)"
    return ""


def _value_problem(got, want) -> str:
    """A short description of how the values differ."""
    if isinstance(want, tuple):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if not _same(g, w):
                return f"result {i + 1} of the tuple is wrong: {_value_problem(g, w)}"
        return ""
    got, want = _array(got), np.asarray(want)
    if want.dtype == np.bool_:
        bad = np.argwhere(got != want)
        return f"{len(bad)} entries differ, the first at index {tuple(int(i) for i in bad[0])}"
    diff = np.abs(got.astype(np.float64) - want)
    idx = tuple(int(i) for i in np.unravel_index(np.nanargmax(diff), diff.shape))
    return (
        f"the values differ from the reference (largest difference {np.nanmax(diff):.2g} "
        f"at index {idx}: got {got[idx]:.4g}, expected {want[idx]:.4g})"
    )


def _error_text(name: str, outcome: Outcome, hints: dict[str, str]) -> str:
    """A friendly explanation of an exception raised by the learner's function."""
    if outcome.error_type == "NotImplementedError":
        return (
            f"{name} is not implemented yet (it raised NotImplementedError). Replace "
            "`raise NotImplementedError()` with your code, run that cell, then this one again."
        )
    text = f"{name} raised {outcome.error}"
    if outcome.where:
        text += f"\n   at {outcome.where}"
    for needle, hint in hints.items():
        if needle.lower() in outcome.error.lower():
            text += f"\n   Hint: {hint}"
    return text


def _sentence(text: str) -> str:
    """Capitalised, with a full stop."""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) or "\n" in text else text + "."


def _say(lines: Sequence[str], quiet: bool) -> None:
    if not quiet:
        print("\n".join(lines))


def evaluate(
    fn,
    name: str,
    cases: Sequence[Case],
    bug_messages: dict[str, str],
    *,
    error_hints: dict[str, str] | None = None,
    time_limit: float = TIME_LIMIT,
    quiet: bool = False,
) -> bool:
    """Run ``fn`` on every case, print a verdict that names the bugs, return pass/fail."""
    name = getattr(fn, "__name__", name) if callable(fn) else name
    if not callable(fn):
        _say([f"{FAIL} {name}: expected a function, got {type(fn).__name__} ({fn!r:.60})."], quiet)
        return False
    run = run_isolated(fn, [c.args for c in cases], time_limit)
    if run.problem:
        _say([f"{FAIL} {name}: {_run_problem_text(run, time_limit)}"], quiet)
        return False
    hints, scores = error_hints or {}, _bug_scores(cases, run.outcomes)
    pairs = zip(cases, run.outcomes, strict=True)
    failures = [f for c, o in pairs if (f := _diagnose(name, c, o, bug_messages, hints, scores))]
    if not failures:
        labels = "; ".join(c.label for c in cases)
        _say([f"{PASS} {name} passed all {len(cases)} checks ({labels})."], quiet)
        return True
    lines = _failure_report(name, len(cases), failures)
    if run.printed.strip():
        lines.append(f"   (While it was checked, {name} printed: {run.printed[:300].strip()!r})")
    _say(lines, quiet)
    return False


def _run_problem_text(run: Run, time_limit: float) -> str:
    if run.problem == "timeout":
        return (
            f"it did not finish within {time_limit:g} s on small inputs, so it was stopped. "
            "Look for a loop that never ends (a `while` whose condition never changes)."
        )
    return f"the Python process running it stopped unexpectedly ({run.detail}); was exit() called?"


def _diagnose(name, case: Case, outcome: Outcome, bug_messages, hints, scores) -> tuple | None:
    """``None`` when the case passes, else ``(kind, text, case label)``.

    Of the bugs that explain this result, the one most consistent with all the
    other results (see :func:`_bug_scores`) is named.
    """
    if not outcome.ok:
        return ("error", _error_text(name, outcome, hints), case.label)
    got = outcome.value
    if _same(got, case.expected):
        return None
    bugs = _matching_bugs(got, case)
    if bugs:
        return ("bug", bug_messages[max(bugs, key=lambda b: scores.get(b, 0))], case.label)
    problem = _structure_problem(got, case.expected) or _value_problem(got, case.expected)
    return ("wrong", problem, case.label)


def _failure_report(name: str, total: int, failures: list[tuple]) -> list[str]:
    """Group the failures: each distinct message once, with the inputs it occurred on."""
    lines = [f"{FAIL} {name} failed {len(failures)} of {total} checks."]
    if failures[0][1].startswith(f"{name} is not implemented"):
        return [f"{FAIL} {failures[0][1]}"]
    seen: dict[str, list[str]] = {}
    for _, text, label in failures:
        seen.setdefault(_sentence(text), []).append(label)
    for text, labels in list(seen.items())[:MAX_MESSAGES]:
        lines.append(f" - On {'; '.join(labels)}:\n   {text}")
    if len(seen) > MAX_MESSAGES:
        more = len(seen) - MAX_MESSAGES
        lines.append(f" - ... and {more} more problem{'s' * (more > 1)}; fix these first.")
    if all(kind == "bug" for kind, _, _ in failures):
        lines.append("   (Your output matches that buggy version exactly on those inputs.)")
    return lines


# ---------------------------------------------------------------------------
# Chapter 1: softmax and scaled dot-product attention
# ---------------------------------------------------------------------------

_SOFTMAX_BUGS = {
    "wrong_axis": (
        "Your softmax normalised along the wrong axis. The numbers that must sum to 1 "
        "lie along `axis`: use np.max(x, axis=axis, keepdims=True) and "
        "np.sum(e, axis=axis, keepdims=True)."
    ),
    "whole_array": (
        "Your softmax normalised over the whole array: all entries together sum to 1. "
        "Only the entries along `axis` should; pass axis=axis (and keepdims=True) to the sum."
    ),
    "no_max": (
        "Your softmax overflows on large logits: exp(1e4) is inf and inf/inf is NaN. "
        "Subtract the maximum along `axis` before exponentiating; softmax does not change "
        "when the same number is subtracted from every logit."
    ),
    "neg_inf_row": (
        "A row where every logit is -inf (every key masked) should give zeros, not NaN. "
        "The maximum of that row is -inf and -inf - (-inf) is NaN: subtract 0 instead "
        "(np.where(np.isfinite(m), m, 0)), and divide by 1 where the sum is 0."
    ),
}


def _softmax_variants(x, axis: int) -> dict:
    """What the classic buggy softmaxes return on ``x``."""
    with np.errstate(all="ignore"):
        others = [softmax(x, a) for a in range(x.ndim) if a != axis % x.ndim]
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        naive = np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)
        flat = np.exp(x - np.max(x)) / np.exp(x - np.max(x)).sum()
    return {
        "wrong_axis": others,
        "whole_array": flat if x.ndim > 1 else [],
        "no_max": naive,
        "neg_inf_row": e / e.sum(axis=axis, keepdims=True),
    }


def _softmax_case(label: str, x, axis: int | None = None) -> Case:
    x = np.asarray(x, dtype=np.float64)
    args = (x,) if axis is None else (x, axis)
    axis = -1 if axis is None else axis
    return Case(label, args, softmax(x, axis), _softmax_variants(x, axis))


def check_softmax(my_softmax, *, time_limit: float = TIME_LIMIT, quiet: bool = False) -> bool:
    """Check ``my_softmax(x, axis=-1)`` against :func:`mha.attention.softmax` (Chapter 1).

    Inputs: a vector (default axis), matrices along either axis, a 3-D array,
    logits of +-1e4 (overflow) and a row of all -inf (must give zeros).
    """
    rng = np.random.default_rng(1)
    cases = [
        _softmax_case("a vector of 5 logits (default axis)", rng.normal(size=5)),
        _softmax_case("a (3, 4) array with axis=-1", rng.normal(size=(3, 4)), -1),
        _softmax_case("a (3, 4) array with axis=0", rng.normal(size=(3, 4)), 0),
        _softmax_case("a (2, 3, 4) array with axis=1", rng.normal(size=(2, 3, 4)), 1),
        _softmax_case("large logits (±1e4)", [[1e4, 0.0, -1e4], [-1e4, 1 - 1e4, 2 - 1e4]], -1),
        _softmax_case("a row of all -inf", [[0.0, 1.0, 2.0], [-np.inf] * 3], -1),
    ]
    hints = {"broadcast": "did you forget keepdims=True when taking the max or the sum?"}
    return evaluate(my_softmax, "my_softmax", cases, _SOFTMAX_BUGS, error_hints=hints,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_ATTENTION_BUGS = {
    "no_scale": (
        "The scores are not scaled. Divide q @ k^T by sqrt(d), where d = q.shape[-1], "
        "so that the softmax does not saturate as d grows."
    ),
    "scale_d": (
        "You divided the scores by d instead of sqrt(d). The dot product of two random "
        "d-dimensional vectors has standard deviation about sqrt(d): divide by np.sqrt(d)."
    ),
    "wrong_axis": (
        "The softmax ran over the queries (axis -2) instead of the keys (axis -1): each "
        "query's weights over the keys must sum to 1, so use axis=-1."
    ),
    "mask_inverted": (
        "Your mask convention is inverted: you treated True as 'may attend'. In this course "
        "(and in nn.MultiheadAttention) True means BLOCKED: set those scores to -inf."
    ),
    "mask_ignored": "The mask had no effect: set the scores where mask is True to -inf.",
    "mask_after_softmax": (
        "You applied the mask after the softmax, so the weights no longer sum to 1. "
        "Set the blocked scores to -inf *before* the softmax."
    ),
    "swapped": "You returned (weights, out); the order should be (out, weights).",
}


def _attention_variant(q, k, v, mask=None, *, scale="sqrt", axis=-1, mask_mode="block"):
    """Attention with one classic mistake switched on; returns ``(out, weights)``."""
    d = q.shape[-1]
    scores = q @ np.swapaxes(k, -1, -2) / {"sqrt": np.sqrt(d), "none": 1.0, "d": d}[scale]
    if mask is not None and mask_mode in ("block", "keep"):
        scores = np.where(mask if mask_mode == "block" else ~mask, -np.inf, scores)
    weights = softmax(scores, axis=axis)
    if mask is not None and mask_mode == "after":
        weights = np.where(mask, 0.0, weights)
    return weights @ v, weights


def _attention_case(label: str, q, k, v, mask=None) -> Case:
    variant = lambda **kw: _attention_variant(q, k, v, mask, **kw)  # noqa: E731
    bugs = {
        "no_scale": variant(scale="none"),
        "scale_d": variant(scale="d"),
        "wrong_axis": variant(axis=-2),
        "swapped": variant()[::-1],
    }
    if mask is not None:
        bugs |= {
            "mask_inverted": variant(mask_mode="keep"),
            "mask_ignored": variant(mask_mode="none"),
            "mask_after_softmax": variant(mask_mode="after"),
        }
    args = (q, k, v) if mask is None else (q, k, v, mask)
    return Case(label, args, variant(), bugs)


def check_attention(my_attention, *, time_limit: float = TIME_LIMIT, quiet: bool = False) -> bool:
    """Check ``my_attention(q, k, v, mask=None) -> (out, weights)`` (Chapter 1).

    Compares with :func:`mha.attention.scaled_dot_product_attention` for L != S
    and d != d_v, with leading batch dimensions, and with boolean masks
    (True = blocked) that leave every query at least one key.
    """
    rng = np.random.default_rng(2)
    r = lambda *shape: rng.normal(size=shape)  # noqa: E731
    mask = np.array([[0, 1, 0, 1, 1], [1, 0, 0, 0, 1], [0, 0, 1, 1, 0]], dtype=bool)
    mask4 = np.array([[0, 1, 1, 1], [0, 1, 0, 1], [1, 1, 0, 0], [1, 0, 0, 1]], dtype=bool)
    cases = [
        _attention_case("L=3 queries, S=5 keys, d=4, d_v=6", r(3, 4), r(5, 4), r(5, 6)),
        _attention_case("batched inputs (2, 2, L, d)", r(2, 2, 3, 4), r(2, 2, 5, 4), r(2, 2, 5, 6)),
        _attention_case("a (3, 5) boolean mask", r(3, 4), r(5, 4), r(5, 6), mask),
        _attention_case("a (4, 4) mask, batch of 2", r(2, 4, 8), r(2, 4, 8), r(2, 4, 3), mask4),
    ]  # fmt: skip
    hints = {"unexpected keyword": "the signature should be my_attention(q, k, v, mask=None)"}
    return evaluate(my_attention, "my_attention", cases, _ATTENTION_BUGS, error_hints=hints,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


# ---------------------------------------------------------------------------
# Chapters 2 to 4: per-head projections, splitting, merging
# ---------------------------------------------------------------------------

_HEAD_PROJECTION_BUGS = {
    "columns": (
        "You sliced columns of w, as if y = x @ w. The weight is in nn.Linear layout "
        "(y = x @ w.T), so head i uses ROWS i*d_head:(i+1)*d_head of w: "
        "x @ w[i*d_head:(i+1)*d_head].T."
    ),
    "seq_reshape": (
        "You reshaped the (L, d_model) projection straight to (num_heads, L, d_head). "
        "That chops the flattened sequence, so a head mixes pieces of different tokens. "
        "Heads split the EMBEDDING: reshape to (L, num_heads, d_head), then transpose to "
        "(num_heads, L, d_head)."
    ),
    "seq_chunks": (
        "You gave each head a chunk of the tokens. Heads do not split the sequence: every "
        "head sees every token, and splits the embedding into num_heads subspaces of d_head."
    ),
}


def _head_projection_case(label: str, length: int, d_model: int, num_heads: int, rng) -> Case:
    x, w = rng.normal(size=(length, d_model)), rng.normal(size=(d_model, d_model))
    d_head, y = d_model // num_heads, project(x, w)  # y: (L, d_model)
    expected = y.reshape(length, num_heads, d_head).transpose(1, 0, 2)
    bugs = {
        "columns": (x @ w).reshape(length, num_heads, d_head).transpose(1, 0, 2),
        "seq_reshape": y.reshape(num_heads, length, d_head),
        "seq_chunks": y.reshape(num_heads, -1, d_model) if length % num_heads == 0 else [],
    }
    return Case(label, (x, w, num_heads), expected, bugs)


def check_head_projections(
    my_head_projections, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_head_projections(x, w, num_heads) -> (num_heads, L, d_head)`` (Chapter 2).

    ``x`` is ``(L, d_model)``, ``w`` is ``(d_model, d_model)`` in ``nn.Linear``
    layout; head ``i`` uses rows ``i*d_head:(i+1)*d_head`` of ``w``.
    """
    rng = np.random.default_rng(3)
    cases = [
        _head_projection_case("L=9, d_model=6, num_heads=3", 9, 6, 3, rng),
        _head_projection_case("L=4, d_model=8, num_heads=2", 4, 8, 2, rng),
        _head_projection_case("one head (num_heads=1)", 5, 4, 1, rng),
        _head_projection_case("L=6, d_model=6, num_heads=3", 6, 6, 3, rng),
        _head_projection_case("d_head=1 (num_heads=d_model=4)", 3, 4, 4, rng),
    ]
    return evaluate(my_head_projections, "my_head_projections", cases, _HEAD_PROJECTION_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_SPLIT_BUGS = {
    "no_transpose": (
        "You reshaped (N, L, E) straight to (N, num_heads, L, d_head) without transposing. "
        "The shape is right but tokens get mixed between heads. Reshape to "
        "(N, L, num_heads, d_head) first, then swap axes 1 and 2."
    ),
    "no_transpose_shape": (
        "You reshaped to (N, L, num_heads, d_head) but did not move the head axis: "
        "transpose to (N, num_heads, L, d_head) (swap axes 1 and 2)."
    ),
    "interleaved": (
        "Your heads take interleaved columns (head i gets columns i, i+h, i+2h, ...). "
        "Head i owns the contiguous block i*d_head:(i+1)*d_head: reshape to "
        "(N, L, num_heads, d_head), not (N, L, d_head, num_heads)."
    ),
}


def _split_case(label: str, shape: tuple, num_heads: int, rng) -> Case:
    x = rng.normal(size=shape)
    n, length, e = shape
    d_head = e // num_heads
    bugs = {
        "no_transpose": x.reshape(n, num_heads, length, d_head),
        "no_transpose_shape": x.reshape(n, length, num_heads, d_head),
        "interleaved": x.reshape(n, length, d_head, num_heads).transpose(0, 3, 1, 2),
    }
    return Case(label, (x, num_heads), split_heads(x, num_heads), bugs)


def check_split_heads(
    my_split_heads, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_split_heads(x, num_heads)``: ``(N, L, E) -> (N, h, L, d_head)`` (Chapter 3)."""
    rng = np.random.default_rng(4)
    cases = [
        _split_case("x (2, 3, 8), num_heads=2", (2, 3, 8), 2, rng),
        _split_case("x (1, 9, 6), num_heads=3", (1, 9, 6), 3, rng),
        _split_case("one head (num_heads=1)", (2, 4, 6), 1, rng),
        _split_case("d_head=1 (x (1, 3, 4), num_heads=4)", (1, 3, 4), 4, rng),
    ]
    return evaluate(my_split_heads, "my_split_heads", cases, _SPLIT_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_MERGE_BUGS = {
    "no_transpose": (
        "You reshaped (N, h, L, d_head) straight to (N, L, E) without transposing back. "
        "The shape is right but tokens get mixed. Move the head axis next to d_head first: "
        "transpose to (N, L, h, d_head), then reshape to (N, L, h * d_head)."
    ),
    "reversed": (
        "Your heads are concatenated in reverse order. Head i must land in columns "
        "i*d_head:(i+1)*d_head, the inverse of split_heads."
    ),
    "interleaved": (
        "Your heads are interleaved column by column (transposed to (N, L, d_head, h) "
        "before reshaping). Transpose to (N, L, h, d_head) so each head stays a "
        "contiguous block of d_head columns."
    ),
}


def _merge_case(label: str, shape: tuple, rng) -> Case:
    x = rng.normal(size=shape)
    n, h, length, d_head = shape
    bugs = {
        "no_transpose": x.reshape(n, length, h * d_head),
        "reversed": merge_heads(x[:, ::-1]),
        "interleaved": x.transpose(0, 2, 3, 1).reshape(n, length, h * d_head),
    }
    return Case(label, (x,), merge_heads(x), bugs)


def check_merge_heads(
    my_merge_heads, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_merge_heads(x)``: ``(N, h, L, d_head) -> (N, L, E)`` (Chapter 4)."""
    rng = np.random.default_rng(5)
    cases = [
        _merge_case("x (2, 2, 3, 4)", (2, 2, 3, 4), rng),
        _merge_case("x (1, 3, 9, 2)", (1, 3, 9, 2), rng),
        _merge_case("one head, x (2, 1, 4, 6)", (2, 1, 4, 6), rng),
        _merge_case("d_head=1, x (1, 4, 3, 1)", (1, 4, 3, 1), rng),
    ]
    return evaluate(my_merge_heads, "my_merge_heads", cases, _MERGE_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


# ---------------------------------------------------------------------------
# Chapter 5: the full layer and its masks
# ---------------------------------------------------------------------------

_MHA_BUGS = {
    "scale_d_model": (
        "You scaled the scores by 1/sqrt(d_model) instead of 1/sqrt(d_head). Each head "
        "takes dot products of d_head-dimensional vectors, so divide by sqrt(d_head)."
    ),
    "no_scale": "The scores are not scaled: divide them by sqrt(d_head) before the softmax.",
    "split_no_transpose": (
        "You reshaped (N, L, E) to (N, num_heads, L, d_head) without transposing, so "
        "tokens are mixed between heads. Reshape to (N, L, num_heads, d_head), then transpose."
    ),
    "merge_no_transpose": (
        "You reshaped the heads (N, num_heads, L, d_head) back to (N, L, E) without "
        "transposing first, so tokens are mixed. Transpose to (N, L, num_heads, d_head) first."
    ),
    "both_no_transpose": (
        "You reshaped without transposing, both when splitting into heads and when merging "
        "them back. Heads split the embedding, not the sequence: reshape to "
        "(N, L, num_heads, d_head) and swap axes 1 and 2 (and the reverse when merging)."
    ),
    "no_out_proj": (
        "The output projection is missing: after concatenating the heads, multiply by "
        "w_o.T (nn.Linear layout). It is what lets the heads' results mix."
    ),
    "weights_not_transposed": (
        "You multiplied by the weights without transposing them (x @ W). The weights are "
        "in nn.Linear layout: y = x @ W.T."
    ),
    "wrong_axis": "The softmax ran over the queries; normalise over the keys (axis=-1).",
}


def _mha_variant(x, w_qkv, w_o, num_heads, *, scale="head", split=True, merge=True,
                 out_proj=True, transpose_w=True, axis=-1):  # fmt: skip
    """Self-attention ``(N, L, E) -> (N, L, E)`` with one classic mistake switched on."""
    n, length, e = x.shape
    d_head = e // num_heads
    lin = (lambda t, w: t @ w.T) if transpose_w else (lambda t, w: t @ w)
    qkv = [lin(x, w) for w in np.split(w_qkv, 3)]
    if split:
        q, k, v = (split_heads(t, num_heads) for t in qkv)
    else:
        q, k, v = (t.reshape(n, num_heads, length, d_head) for t in qkv)
    d = {"head": d_head, "model": e, "none": 1}[scale]
    weights = softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(d), axis=axis)
    heads = weights @ v  # (N, h, L, d_head)
    concat = merge_heads(heads) if merge else heads.reshape(n, length, e)
    return lin(concat, w_o) if out_proj else concat


def _mha_case(label: str, shape: tuple, num_heads: int, rng) -> Case:
    x = rng.normal(size=shape)
    e = shape[-1]
    w_qkv, w_o = rng.normal(size=(3 * e, e)) / np.sqrt(e), rng.normal(size=(e, e)) / np.sqrt(e)
    args = (x, w_qkv, w_o, num_heads)
    expected = multi_head_attention_forward(x, x, x, num_heads, w_qkv, None, w_o, None,
                                            need_weights=False)[0]  # fmt: skip
    options = {
        "scale_d_model": {"scale": "model"},
        "no_scale": {"scale": "none"},
        "split_no_transpose": {"split": False},
        "merge_no_transpose": {"merge": False},
        "both_no_transpose": {"split": False, "merge": False},
        "no_out_proj": {"out_proj": False},
        "weights_not_transposed": {"transpose_w": False},
        "wrong_axis": {"axis": -2},
    }
    bugs = {name: _mha_variant(*args, **kw) for name, kw in options.items()}
    return Case(label, args, expected, bugs)


def check_multi_head_attention(
    my_multi_head_attention, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_multi_head_attention(x, w_qkv, w_o, num_heads) -> (N, L, E)`` (Chapter 5).

    Self-attention without biases, compared with
    :func:`mha.reference.multi_head_attention_forward`.
    """
    rng = np.random.default_rng(6)
    cases = [
        _mha_case("x (2, 4, 8), num_heads=2", (2, 4, 8), 2, rng),
        _mha_case("x (1, 9, 6), num_heads=3", (1, 9, 6), 3, rng),
        _mha_case("one head, x (1, 5, 4)", (1, 5, 4), 1, rng),
        _mha_case("d_head=2, x (2, 3, 8), num_heads=4", (2, 3, 8), 4, rng),
    ]
    return evaluate(my_multi_head_attention, "my_multi_head_attention", cases, _MHA_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_CAUSAL_BUGS = {
    "future_leak": (
        "Future tokens leak through your mask: it blocks the past and lets each query see "
        "the keys after it (the mask is transposed). Query i may attend to keys j <= i, so "
        "block the strict UPPER triangle: np.triu(np.ones((L, L), dtype=bool), k=1)."
    ),
    "next_token_leak": (
        "Your mask lets each query see the next token (the first blocked key is i + 2). "
        "Block every key j > i: np.triu(..., k=1)."
    ),
    "diag_blocked": (
        "Your mask blocks the diagonal, so a token cannot attend to itself (and the first "
        "token has nothing to attend to). Use k=1 in np.triu to keep the diagonal open."
    ),
    "inverted": (
        "Your mask convention is inverted: True should mean BLOCKED (the nn.MultiheadAttention "
        "convention), but your True entries mark the keys a query may attend to."
    ),
    "nothing_blocked": "Your mask blocks nothing: every future key j > i should be True.",
}


def _causal_case(length: int) -> Case:
    ones = np.ones((length, length), dtype=bool)
    expected = np.triu(ones, k=1)
    bugs = {
        "future_leak": np.tril(ones, k=-1),
        "next_token_leak": np.triu(ones, k=2),
        "diag_blocked": np.triu(ones, k=0),
        "inverted": ~expected,
        "nothing_blocked": ~ones,
    }
    return Case(f"L={length}", (length,), expected, bugs)


def check_causal_mask(
    my_causal_mask, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_causal_mask(L) -> bool (L, L)``, True = blocked (Chapter 5).

    Compared with :func:`mha.module.causal_mask` for ``L`` = 1, 2, 4 and 9.
    """
    cases = [_causal_case(length) for length in (1, 2, 4, 9)]
    return evaluate(my_causal_mask, "my_causal_mask", cases, _CAUSAL_BUGS,
                    time_limit=time_limit, quiet=quiet)  # fmt: skip


_PADDING_BUGS = {
    "tiled": (
        "Your mask is repeated across heads in the wrong order: np.tile / torch.repeat "
        "stacks [ex0, ex1, ex0, ex1, ...], but row b * num_heads + i must belong to example "
        "b (batch index major). Use np.repeat(..., num_heads, axis=0) / "
        "torch.repeat_interleave(..., num_heads, dim=0)."
    ),
    "inverted": (
        "Your mask convention is inverted: True should mean BLOCKED (padded keys), but your "
        "True entries mark the keys a query may attend to."
    ),
    "tiled_inverted": (
        "Two problems: the heads are repeated in the wrong order (use np.repeat / "
        "repeat_interleave, not np.tile / torch.repeat), and True should mean BLOCKED."
    ),
    "rows": (
        "Your mask blocks queries (rows) instead of keys (columns). A padded position "
        "must not be attended to: broadcast the (N, S) mask along the query axis, "
        "mask[:, None, :], to get (N * num_heads, L, S)."
    ),
}


def _padding_case(label: str, pad: np.ndarray, num_heads: int, length: int) -> Case:
    n, s = pad.shape
    grow = lambda m: np.broadcast_to(m[:, None, :], (n * num_heads, length, s)).copy()  # noqa: E731
    expected = grow(np.repeat(pad, num_heads, axis=0))
    tiled = grow(np.tile(pad, (num_heads, 1)))
    rows = np.repeat(pad, num_heads, axis=0)[:, :, None]  # (N * h, S, 1): blocks queries
    rows = np.broadcast_to(rows, (n * num_heads, s, length)).copy()
    bugs = {"tiled": tiled, "inverted": ~expected, "tiled_inverted": ~tiled, "rows": rows}
    return Case(label, (pad, num_heads, length), expected, bugs)


def check_expand_padding_mask(
    my_expand_padding_mask, *, time_limit: float = TIME_LIMIT, quiet: bool = False
) -> bool:
    """Check ``my_expand_padding_mask(key_padding_mask, num_heads, L)`` (Chapter 5).

    ``key_padding_mask`` is ``(N, S)``, True = padded; the result is a boolean
    ``(N * num_heads, L, S)`` mask with the batch index major, as
    ``nn.MultiheadAttention`` expects for a 3-D ``attn_mask``.
    """
    b = lambda *rows: np.array(rows, dtype=bool)  # noqa: E731
    three = b([0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 1, 1])
    cases = [
        _padding_case("N=2, S=5, num_heads=3, L=4", b([0, 0, 0, 1, 1], [0, 0, 0, 0, 1]), 3, 4),
        _padding_case("N=3, S=4, num_heads=2, L=4", three, 2, 4),
        _padding_case("one example, N=1, num_heads=4", b([0, 0, 1]), 4, 2),
        _padding_case("one head, num_heads=1", b([0, 1, 1], [0, 0, 0]), 1, 3),
    ]  # fmt: skip
    shape_hint = {"reshape": "the result must have shape (N * num_heads, L, S)"}
    return evaluate(my_expand_padding_mask, "my_expand_padding_mask", cases, _PADDING_BUGS,
                    error_hints=shape_hint, time_limit=time_limit, quiet=quiet)  # fmt: skip
