"""The one place for sample statistics: percentiles and the mean with its 95% interval.

Every percentile in the project (probe lateness, latency, benchmark spreads,
summaries over repetitions) uses :func:`percentile`: linear interpolation
between order statistics, numpy's default. :func:`summarize` gives the mean
with a Student-t 95% confidence interval, median, p5, p95, min, max and the
sample standard deviation.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """``p``-th percentile (0-100) with linear interpolation (numpy's default)."""
    if not values:
        raise ValueError("percentile of an empty sample")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


#: Two-sided 95% critical values of Student's t distribution, t(0.975, df),
#: for df = 1..30 (standard tables). Beyond 30 degrees of freedom the normal
#: value 1.96 is used; this understates the interval by at most 4% (df = 31,
#: true 2.040) and by under 1% from df = 120 on.
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)
Z_975 = 1.96


def t_critical_95(df: int) -> float:
    """Two-sided 95% Student-t critical value for ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("need at least 1 degree of freedom")
    return T_975[df - 1] if df <= len(T_975) else Z_975


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """Mean with Student-t 95% CI, median, p5, p95, min, max, sample std of ``values``.

    ``std`` is the sample standard deviation (n - 1); the interval is
    ``mean +/- t(0.975, n-1) * std / sqrt(n)``. With one value, ``std`` and the
    interval are None; with none, everything but ``n`` is None. NaN values
    are refused.
    """
    xs = [float(v) for v in values]
    if any(math.isnan(x) for x in xs):
        raise ValueError("summarize: sample contains NaN")
    keys = ("mean", "ci95_low", "ci95_high", "median", "p5", "p95", "min", "max", "std")
    n = len(xs)
    out: dict[str, float | int | None] = {"n": n, **{k: None for k in keys}}
    if n == 0:
        return out
    mean = math.fsum(xs) / n
    out.update(mean=mean, median=percentile(xs, 50), p5=percentile(xs, 5), p95=percentile(xs, 95),
               min=min(xs), max=max(xs))
    if n >= 2:
        std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
        half = t_critical_95(n - 1) * std / math.sqrt(n)
        out.update(std=std, ci95_low=mean - half, ci95_high=mean + half)
    return out
