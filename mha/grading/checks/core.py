"""What every checker shares: cases, comparison, naming bugs, the verdict (Chapters 1 to 7).

A checker builds a list of :class:`Case` (an input, the expected result and
what the classic buggy variants return on it) and calls :func:`evaluate`. That
runs the learner's function with :func:`~mha.grading.checks.isolation.run_isolated`
and hands the outcomes to :func:`verdict`, which prints a friendly report.

:func:`verdict` is separate so that the sandboxed re-grade
(:mod:`mha.grading.regrade`) can judge outcomes computed elsewhere with the same
words. :class:`Exercise` describes one exercise for that re-grade: how to draw
cases from a seed, the bugs' messages and the ``mha`` functions that are its
reference (which an answer must not call).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mha.grading.checks.isolation import TIME_LIMIT, Outcome, Run, run_isolated

__all__ = ["Case", "TensorArg", "Exercise", "evaluate", "verdict", "same", "PASS", "FAIL"]

PASS, FAIL = "✅", "❌"
MAX_MESSAGES = 3  # distinct problems shown at once


@dataclass
class Case:
    """One input for the learner's function, the expected result, and the bugs' results.

    ``bugs`` maps a bug's name to what that buggy variant returns on this input
    (or a list of such results when the bug has several forms). ``judge``, when
    given, replaces the equality test for exercises with many right answers: it
    returns ``""`` for an accepted result, else what is wrong with it
    (``expected`` is then one right answer, for the shape and dtype checks).
    """

    label: str
    args: tuple
    expected: object
    bugs: dict = field(default_factory=dict)
    judge: Callable[[object], str] | None = None


@dataclass(frozen=True)
class TensorArg:
    """A case argument that the answer receives as a ``torch.Tensor`` (Chapter 10).

    It travels to the sandbox as the array ``array`` and becomes a tensor there.
    """

    array: np.ndarray


@dataclass(frozen=True)
class Exercise:
    """One coding exercise, as the sandboxed re-grade (:mod:`mha.grading.regrade`) sees it.

    ``cases(rng)`` draws fresh inputs (with their expected results and bugs)
    from ``rng``; ``references`` are the dotted names of the ``mha`` functions
    that compute the answer, which the learner's code must not call.
    """

    function: str  # the name the learner defines, e.g. "my_softmax"
    cases: Callable[[np.random.Generator], list[Case]]
    bug_messages: dict[str, str]
    references: tuple[str, ...]
    error_hints: dict[str, str] = field(default_factory=dict)


def _array(value) -> np.ndarray | None:
    """``value`` as a NumPy array, or ``None`` when it is not array-like."""
    if value is None or isinstance(value, str | dict):
        return None
    try:
        arr = np.asarray(value)
    except Exception:
        return None
    return None if arr.dtype == object else arr


def same(got: object, want: object) -> bool:
    """Equal shapes and values (close for floats; NaN equals NaN); tuples pairwise."""
    if isinstance(want, tuple):
        if not isinstance(got, tuple | list) or len(got) != len(want):
            return False
        return all(same(g, w) for g, w in zip(got, want, strict=True))
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
    return [o for o in options if not same(o, case.expected)]


def _matching_bugs(got, case: Case) -> list[str]:
    """Names of the bugs whose output on ``case`` equals ``got`` (and not the expected)."""
    return [name for name in case.bugs if any(same(got, o) for o in _informative(case, name))]


def _bug_scores(cases: Sequence[Case], outcomes: Sequence[Outcome]) -> dict[str, int]:
    """+1 for each input where a bug explains the result, -1 where it is ruled out."""
    scores: dict[str, int] = {}
    for case, outcome in zip(cases, outcomes, strict=True):
        for name in case.bugs if outcome.ok else ():
            if options := _informative(case, name):
                hit = any(same(outcome.value, o) for o in options)
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
    if np.issubdtype(want.dtype, np.floating) and not np.issubdtype(arr.dtype, np.floating):
        return f"the result has dtype {arr.dtype}, expected a floating-point array"
    if want.dtype != np.bool_ and not np.issubdtype(arr.dtype, np.number):
        return f"the result has dtype {arr.dtype}, expected numbers"
    if want.dtype == np.float64 and arr.dtype != np.float64 and not same(arr, want):
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
            if not same(g, w):
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


def _sentence(text: str, name: str = "") -> str:
    """Capitalised (unless it starts with the function's name, ``my_softmax``), with a full stop."""
    if not (name and text.startswith(name)):
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) or "\n" in text else text + "."


def _say(lines: Sequence[str], quiet: bool) -> None:
    if not quiet:
        print("\n".join(lines))


def evaluate(
    fn: Callable[..., object],
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
    passed, lines = verdict(name, cases, run, bug_messages, error_hints, time_limit)
    _say(lines, quiet)
    return passed


def verdict(
    name: str,
    cases: Sequence[Case],
    run: Run,
    bug_messages: dict[str, str],
    error_hints: dict[str, str] | None = None,
    time_limit: float = TIME_LIMIT,
) -> tuple[bool, list[str]]:
    """Judge the outcomes of ``run`` (one per case): ``(passed, lines of the report)``."""
    if run.problem:
        return False, [f"{FAIL} {name}: {_run_problem_text(run, time_limit)}"]
    hints, scores = error_hints or {}, _bug_scores(cases, run.outcomes)
    pairs = zip(cases, run.outcomes, strict=True)
    failures = [f for c, o in pairs if (f := _diagnose(name, c, o, bug_messages, hints, scores))]
    if not failures:
        labels = "; ".join(c.label for c in cases)
        return True, [f"{PASS} {name} passed all {len(cases)} checks ({labels})."]
    lines = _failure_report(name, len(cases), failures)
    if run.printed.strip():
        lines.append(f"   (While it was checked, {name} printed: {run.printed[:300].strip()!r})")
    return False, lines


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
    if case.judge is not None:
        problem = _structure_problem(got, case.expected) or _judged(case, got)
        return ("wrong", problem, case.label) if problem else None
    if same(got, case.expected):
        return None
    bugs = _matching_bugs(got, case)
    if bugs:
        return ("bug", bug_messages[max(bugs, key=lambda b: scores.get(b, 0))], case.label)
    problem = _structure_problem(got, case.expected) or _value_problem(got, case.expected)
    return ("wrong", problem, case.label)


def _judged(case: Case, got) -> str:
    try:
        return case.judge(got)
    except Exception as exc:  # a result the judge cannot use
        return f"the result could not be used ({type(exc).__name__}: {exc})"


def _failure_report(name: str, total: int, failures: list[tuple]) -> list[str]:
    """Group the failures: each distinct message once, with the inputs it occurred on."""
    lines = [f"{FAIL} {name} failed {len(failures)} of {total} checks."]
    if failures[0][1].startswith(f"{name} is not implemented"):
        return [f"{FAIL} {failures[0][1]}"]
    seen: dict[str, list[str]] = {}
    for _, text, label in failures:
        seen.setdefault(_sentence(text, name), []).append(label)
    for text, labels in list(seen.items())[:MAX_MESSAGES]:
        lines.append(f" - On {'; '.join(labels)}:\n   {text}")
    if len(seen) > MAX_MESSAGES:
        more = len(seen) - MAX_MESSAGES
        lines.append(f" - ... and {more} more problem{'s' * (more > 1)}; fix these first.")
    if all(kind == "bug" for kind, _, _ in failures):
        lines.append("   (Your output matches that buggy version exactly on those inputs.)")
    return lines
