"""Chapter 7: the statistics behind each verdict (thin wrappers around ``scipy.stats``).

* :func:`success_interval`: Clopper-Pearson (exact binomial) interval of a
  success rate, ``k`` successes in ``n`` seeds;
* :func:`paired_successes`: two settings on the same seeds, success or not:
  the discordant pairs, an exact McNemar test and the difference of the rates
  with a bootstrap interval;
* :func:`paired_difference`: two settings on the same seeds, a number per
  seed: the mean difference with a bootstrap interval and a Wilcoxon
  signed-rank test;
* :func:`mean_interval`: the mean with a percentile bootstrap interval, which
  stays inside the range of the data (inside ``[0, 1]`` for accuracies);
* :func:`adjusted`: Benjamini-Hochberg adjusted p-values of one table of tests;
* :func:`first_step_at`: the first evaluation step at which a curve reaches a level.

The bootstrap uses a fixed generator, so a result is the same on every run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from numpy.typing import ArrayLike

__all__ = ["CONFIDENCE", "SUCCESS", "ALPHA", "success_interval", "mean_interval",
           "paired_difference", "paired_successes", "adjusted", "first_step_at"]  # fmt: skip

CONFIDENCE = 0.95
SUCCESS = 0.99  # a run "learned the task" when its final test accuracy is at least this
RESAMPLES = 9999
ALPHA = 0.05  # a comparison is significant when its adjusted p-value is below this


def success_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a rate from ``k`` successes in ``n`` trials."""
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def mean_interval(
    values: ArrayLike,
    axis: int = 0,
    confidence: float = CONFIDENCE,
    statistic: Callable[..., np.ndarray] = np.mean,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (or ``statistic``, e.g. ``np.median``) of ``values`` along ``axis`` and its
    percentile bootstrap interval: three arrays.

    The interval of a mean of numbers in ``[a, b]`` stays inside ``[a, b]``
    (unlike mean +- std); with all values equal it has zero width.
    """
    values = np.asarray(values, dtype=float)
    mean = statistic(values, axis=axis)
    if values.shape[axis] < 2 or np.all(values == values.take([0], axis)):
        return mean, mean.copy(), mean.copy()
    res = stats.bootstrap((values,), statistic, axis=axis, confidence_level=confidence,
                          n_resamples=RESAMPLES, method="percentile",
                          rng=np.random.default_rng(0))  # fmt: skip
    low, high = res.confidence_interval
    return mean, np.minimum(low, mean), np.maximum(high, mean)


def paired_difference(
    x: ArrayLike,
    y: ArrayLike,
    confidence: float = CONFIDENCE,
    statistic: Callable[..., np.ndarray] = np.mean,
) -> dict:
    """``x - y`` seed by seed: mean, bootstrap interval, and a two-sided Wilcoxon p-value.

    ``x`` and ``y`` hold one number per seed, in the same seed order. With
    ``statistic=np.median`` the centre and its interval are those of the median
    difference (robust to a censored value, such as "never reached": Chapter 7).
    With ties or zero differences scipy's Wilcoxon test uses its normal approximation.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two 1-d arrays of the same length, got {x.shape} and {y.shape}")
    d = x - y
    mean, low, high = mean_interval(d, confidence=confidence, statistic=statistic)
    p = 1.0 if np.all(d == 0) else float(stats.wilcoxon(x, y).pvalue)
    larger = {"x_larger": int((d > 0).sum()), "y_larger": int((d < 0).sum())}
    return {
        "mean": float(mean),
        "low": float(low),
        "high": float(high),
        "p": p,
        "n": len(d),
    } | larger


def paired_successes(a: ArrayLike, b: ArrayLike, confidence: float = CONFIDENCE) -> dict:
    """Success (bool) of settings ``a`` and ``b`` seed by seed: exact McNemar test.

    Returns the counts, the discordant pairs (``a_only``: seeds where only
    ``a`` succeeded), the two-sided exact McNemar p-value (a binomial test on
    the discordant pairs) and the difference of the success rates ``a - b``
    with a bootstrap interval over seeds.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    a_only, b_only = int((a & ~b).sum()), int((b & ~a).sum())
    p = 1.0 if a_only + b_only == 0 else float(stats.binomtest(a_only, a_only + b_only).pvalue)
    diff = paired_difference(a.astype(float), b.astype(float), confidence)
    return {"a": int(a.sum()), "b": int(b.sum()), "n": len(a), "a_only": a_only,
            "b_only": b_only, "p": p, "diff": diff["mean"], "low": diff["low"],
            "high": diff["high"]}  # fmt: skip


def adjusted(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``), Chapter 7.

    A table that runs several tests at once adjusts them together: a
    comparison is significant at 5% when its adjusted p-value is below 0.05,
    which keeps the expected share of false findings in the table at 5%.
    """
    if len(p_values) == 0:
        return []
    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values), method="bh")]


def first_step_at(
    steps: Sequence[int] | np.ndarray, curve: ArrayLike, level: float = SUCCESS
) -> int | None:
    """The first of ``steps`` at which ``curve`` (same length) is ``>= level``; None if never."""
    hits = np.nonzero(np.asarray(curve) >= level)[0]
    return int(steps[hits[0]]) if len(hits) else None
