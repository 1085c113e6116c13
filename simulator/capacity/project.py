"""Growth models fitted to measurements, and projections with intervals.

- `linear_fit`: least squares (scipy.stats.linregress) of size against rows, with the
  t-interval of the slope and of the mean response at any x (`LinearFit.predict`): how a
  table grows at the margin, checked for linearity by its r².
- `bootstrap_mean`: the mean of per-seed measurements with a percentile bootstrap interval
  (scipy.stats.bootstrap, seeded: the same values give the same interval). One value has
  no interval: `Interval.samples` says how many there were.
- `Interval.scaled`: a per-user-day figure projected to users × days (both ends scaled).

Invariant: every interval satisfies low <= estimate <= high.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9_999


@dataclass(frozen=True)
class Interval:
    """An estimate with a `CONFIDENCE` interval, from `samples` measurements."""

    estimate: float
    low: float
    high: float
    samples: int

    def __post_init__(self) -> None:
        if not self.low <= self.estimate <= self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] does not hold {self.estimate}")

    def scaled(self, factor: float) -> Interval:
        return Interval(self.estimate * factor, self.low * factor, self.high * factor,
                        self.samples)

    def plus(self, other: Interval) -> Interval:
        """The sum of two independent estimates; ends added (a conservative interval)."""
        return Interval(self.estimate + other.estimate, self.low + other.low,
                        self.high + other.high, min(self.samples, other.samples))


@dataclass(frozen=True)
class LinearFit:
    """y = slope·x + intercept, fitted to `n` points."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    r_squared: float
    n: int
    x_mean: float
    sxx: float  # sum of squared deviations of x
    residual_sd: float

    def predict(self, x: float) -> Interval:
        """The fitted mean at `x` with its t-interval (an extrapolation beyond the points
        is only as good as the linearity the points showed)."""
        estimate = self.slope * x + self.intercept
        if self.n <= 2:
            return Interval(estimate, estimate, estimate, self.n)
        t = stats.t.ppf((1 + CONFIDENCE) / 2, self.n - 2)
        half = t * self.residual_sd * math.sqrt(1 / self.n + (x - self.x_mean) ** 2 / self.sxx)
        return Interval(estimate, estimate - half, estimate + half, self.n)


def linear_fit(x: Sequence[float], y: Sequence[float]) -> LinearFit:
    """Least-squares line through at least two points with distinct x."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) < 2 or np.ptp(xs) == 0:
        raise ValueError("a line needs at least two points with different x")
    result = stats.linregress(xs, ys)
    n = len(xs)
    if n > 2:
        residuals = ys - (result.slope * xs + result.intercept)
        residual_sd = float(np.sqrt(np.sum(residuals**2) / (n - 2)))
        half = stats.t.ppf((1 + CONFIDENCE) / 2, n - 2) * result.stderr
    else:
        residual_sd, half = 0.0, 0.0
    return LinearFit(float(result.slope), float(result.intercept), float(result.slope - half),
                     float(result.slope + half), float(result.rvalue**2), n,
                     float(xs.mean()), float(np.sum((xs - xs.mean()) ** 2)), residual_sd)


def bootstrap_mean(values: Sequence[float], seed: int = 0) -> Interval:
    """The mean of `values` with a percentile bootstrap interval."""
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        raise ValueError("no values to take the mean of")
    mean = float(data.mean())
    if len(data) == 1 or np.ptp(data) == 0:
        return Interval(mean, mean, mean, len(data))
    result = stats.bootstrap((data,), np.mean, confidence_level=CONFIDENCE,
                             n_resamples=RESAMPLES, method="percentile",
                             random_state=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return Interval(mean, min(low, mean), max(high, mean), len(data))
