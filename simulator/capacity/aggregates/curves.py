"""Fitted curves of cells against fleet size n (`scipy.optimize.curve_fit`, relative
residuals): a saturating K (1 - exp(-(n/s)^b)) and a power law a n^b, with intervals
from refitting resamples, bootstrapped over seeds.

Invariants:
- A fit is a pure function of its points and its generator: the run's bootstrap
  generators are keyed by its seeds and sizes (`SeedSequence` entropy) and by which fit
  they serve (spawn key); no global random state is used.
- The points are week-weighted values per (seed, fleet size); a resample the optimiser
  cannot fit is dropped (the interval method says how many fits remain).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.optimize import OptimizeWarning, curve_fit

from simulator.capacity.aggregates._types import F64, I64
from simulator.capacity.aggregates.counting import _dense
from simulator.capacity.aggregates.fleet import FleetCells, _seed_values
from simulator.errors import UsageError


def saturating(n: npt.ArrayLike, ceiling: float, scale: float, shape: float) -> F64:
    """C(n) = K (1 - exp(-(n/s)^b)): K cells to fill, s the fleet that fills 63 % of
    them; b = 1 when all cells are equally likely, b < 1 when their chances differ."""
    x = np.asarray(n, dtype=np.float64)
    return np.asarray(-ceiling * np.expm1(-((x / scale) ** shape)), dtype=np.float64)


def power_law(n: npt.ArrayLike, coefficient: float, exponent: float) -> F64:
    """C(n) = a n^b: growth without a ceiling."""
    return np.asarray(coefficient * np.asarray(n, dtype=np.float64) ** exponent,
                      dtype=np.float64)


_CURVES: dict[str, tuple[Callable[..., F64], tuple[str, ...], str]] = {
    "saturating": (saturating, ("K", "s", "b"), "K * (1 - exp(-(n / s) ** b))"),
    "power": (power_law, ("a", "b"), "a * n ** b"),
}


@dataclass(frozen=True)
class CurveFit:
    """A curve of cells against fleet size n, fitted with relative residuals."""

    model: str  # "saturating" or "power"
    formula: str
    parameter_names: tuple[str, ...]
    parameters: tuple[float, ...]
    standard_errors: tuple[float, ...]  # from curve_fit's covariance (points pooled)
    intervals_95: tuple[tuple[float, float], ...]  # 2.5 and 97.5 % of the resamples
    interval_method: str
    resamples: tuple[tuple[float, ...], ...] = field(repr=False)  # refitted parameters
    rms_relative_residual: float
    aic: float  # n ln(RSS/n) + 2k on relative residuals

    def predict(self, n: npt.ArrayLike) -> F64:
        return _CURVES[self.model][0](n, *self.parameters)

    def predict_interval(self, n: float) -> tuple[float, float]:
        """2.5 and 97.5 % of the resampled fits' predictions at `n`."""
        draws = np.array([_CURVES[self.model][0](n, *p) for p in self.resamples])
        return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def _initial(model: str, x: F64, y: F64) -> tuple[list[float], tuple[list[float], list[float]]]:
    """Starting point and bounds of a fit."""
    if model == "power":
        slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
        return [float(np.exp(intercept)), float(slope)], ([0.0, 0.0], [np.inf, 3.0])
    top = float(y.max())
    return ([2.0 * top, float(x.max()) / math.log(2.0), 1.0],
            ([0.5 * top, 1e-3, 0.05], [1e9, 1e12, 3.0]))


def _fit_once(model: str, x: F64, y: F64) -> tuple[F64, F64]:
    p0, bounds = _initial(model, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        params, cov = curve_fit(_CURVES[model][0], x, y, p0=p0, sigma=y, bounds=bounds,
                                maxfev=20_000)
    return np.asarray(params, dtype=np.float64), np.asarray(cov, dtype=np.float64)


def _resample(model: str, x: F64, y: F64, label: I64, params: F64, cov: F64, count: int,
              rng: np.random.Generator) -> F64:
    """Refitted parameters: a bootstrap over labels, or covariance draws for one label."""
    groups = int(label.max()) + 1
    if groups < 2:
        finite = np.where(np.isfinite(cov), cov, 0.0)
        draws = rng.multivariate_normal(params, finite, size=count, method="eigh")
        _, (low, high) = _initial(model, x, y)
        return np.clip(draws, low, high)
    members = [np.flatnonzero(label == g) for g in range(groups)]
    out = []
    for _ in range(count):
        pick = np.concatenate([members[g] for g in rng.integers(0, groups, groups)])
        if np.unique(x[pick]).size <= len(params):
            continue
        try:
            out.append(_fit_once(model, x[pick], y[pick])[0])
        except (RuntimeError, ValueError):  # a resample the optimiser cannot fit
            continue
    return np.array(out) if out else params[None, :]


def fit_curve(model: str, phones: npt.ArrayLike, cells: npt.ArrayLike, *,
              groups: npt.ArrayLike | None = None, resamples: int = 200,
              rng: np.random.Generator | None = None) -> CurveFit:
    """Fit `model` ("saturating" or "power") to (phones, cells) points.

    Intervals come from refitting `resamples` times: resampling the `groups` (one label
    per point, e.g. the seed) with replacement when there are two or more, else drawing
    parameters from the fit's covariance."""
    if model not in _CURVES:
        raise UsageError(f"model must be one of {sorted(_CURVES)}, got {model!r}")
    x = np.asarray(phones, dtype=np.float64)
    y = np.asarray(cells, dtype=np.float64)
    needed = len(_CURVES[model][1]) + 1
    if x.shape != y.shape or np.unique(x).size < needed or y.min() <= 0:
        raise UsageError(f"the {model} fit needs positive cells at {needed} or more fleet sizes")
    label = np.zeros(x.size, dtype=np.int64) if groups is None else _dense(np.asarray(groups))
    rng = rng if rng is not None else np.random.Generator(np.random.PCG64(0))
    params, cov = _fit_once(model, x, y)
    rel = (y - _CURVES[model][0](x, *params)) / y
    draws = _resample(model, x, y, label, params, cov, resamples, rng)
    method = (f"bootstrap over {label.max() + 1} groups ({draws.shape[0]} fits)"
              if label.max() > 0 else "normal draws from the covariance")
    return CurveFit(
        model=model, formula=_CURVES[model][2], parameter_names=_CURVES[model][1],
        parameters=tuple(float(p) for p in params),
        standard_errors=tuple(float(s) for s in np.sqrt(np.clip(np.diag(cov), 0, None))),
        intervals_95=tuple((float(lo), float(hi)) for lo, hi in
                           zip(*np.percentile(draws, [2.5, 97.5], axis=0), strict=True)),
        interval_method=method,
        resamples=tuple(tuple(float(v) for v in d) for d in draws),
        rms_relative_residual=float(np.sqrt(np.mean(rel ** 2))),
        aic=float(x.size * math.log(max(float(np.sum(rel ** 2)), 1e-300) / x.size)
                  + 2 * len(params)))


@dataclass(frozen=True)
class CellFits:
    """Both curves of one quantity; `better` has the lower AIC."""

    quantity: str  # "cells per 5-minute window" or "cells per day"
    saturating: CurveFit
    power: CurveFit

    @property
    def better(self) -> CurveFit:
        return self.saturating if self.saturating.aic <= self.power.aic else self.power


def _generator(key: Sequence[int], *indices: int) -> np.random.Generator:
    """A bootstrap generator keyed by the run's seeds and sizes (`SeedSequence` entropy)
    and by which fit it serves (spawn key), as `simulator.seeds` keys its streams."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(
        [int(v) for v in key], spawn_key=tuple(indices))))


def _fits(measurements: Sequence[FleetCells], weights: dict[str, float],
          resamples: int, key: Sequence[int]) -> tuple[CellFits, CellFits]:
    """Both curves of cells per window and of cells per day, bootstrapped over seeds."""
    out = []
    for k, (attribute, quantity) in enumerate((
            ("cells_per_window_mean", "cells per 5-minute window"),
            ("cells_per_day", "cells per day"))):
        values = _seed_values(measurements, weights, attribute)
        seed = np.array([v[0] for v in values])
        phones = np.array([v[1] for v in values], dtype=np.float64)
        cells = np.array(list(values.values()))
        curves = [fit_curve(model, phones, cells, groups=seed, resamples=resamples,
                            rng=_generator(key, k, j))
                  for j, model in enumerate(("saturating", "power"))]
        out.append(CellFits(quantity, curves[0], curves[1]))
    return out[0], out[1]
