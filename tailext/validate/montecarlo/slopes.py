"""Log-log slope fits with confidence intervals (for rates ``bias ∝ m^a``)."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import optimize, stats

__all__ = ["Slope", "fit_loglog_slope"]


class Slope(NamedTuple):
    """Fitted ``log y = c + a log x``: slope ``a``, its SE and 95 % CI, and the points used."""

    slope: float
    slope_se: float
    ci_low: float
    ci_high: float
    intercept: float
    points: int

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the confidence interval."""
        return self.ci_low <= value <= self.ci_high

    def as_dict(self) -> dict:
        return {**self._asdict(), "ci": [self.ci_low, self.ci_high]}


def fit_loglog_slope(x, y, y_se, *, level=0.95, correction=False) -> Slope:
    r"""Weighted least squares of ``log y`` on ``log x`` with weights ``(y / SE(y))²``.

    The SE of ``log y`` is ``SE(y)/y`` (delta method). The slope's covariance is the WLS one
    multiplied by ``max(1, χ²/dof)``, so lack of fit (higher-order terms the power law
    ignores) widens the interval instead of being hidden; the interval uses Student's ``t``
    with ``dof`` degrees of freedom.

    With ``correction=True`` the model is ``y = A x^a (1 + d/x)``: the leading exponent ``a``
    with a next-order ``1/x`` correction, which is what "``O(x^a)`` with an expansion in
    powers of ``1/x``" predicts (e.g. bias ``= b₁/m + b₂/m² + …``); needs four points,
    ``dof = n − 3``. Otherwise ``y = A x^a``, ``dof = n − 2``.

    Raises
    ------
    ValueError
        With too few points, or non-positive ``y`` or ``SE``.

    Examples
    --------
    >>> import numpy as np
    >>> from tailext.validate.montecarlo.slopes import fit_loglog_slope
    >>> m = np.array([256., 512., 1024., 2048.])
    >>> fit = fit_loglog_slope(m, 3.0 / m, 0.01 * 3.0 / m)
    >>> round(fit.slope, 9), fit.contains(-1.0)
    (-1.0, True)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    y_se = np.asarray(y_se, dtype=np.float64)
    if x.shape != y.shape or y.shape != y_se.shape or x.ndim != 1:
        raise ValueError("`x`, `y` and `y_se` must be 1-D arrays of the same length.")
    needed = 4 if correction else 3
    if x.size < needed:
        raise ValueError(f"a slope with a confidence interval needs at least {needed} points, "
                         f"got {x.size}.")
    if np.any(x <= 0) or np.any(y <= 0) or np.any(y_se <= 0):
        raise ValueError("`x`, `y` and `y_se` must be positive for a log-log fit.")
    lx, ly = np.log(x), np.log(y)
    weights = (y / y_se) ** 2
    design = np.column_stack([np.ones_like(lx), lx])
    normal = design.T @ (weights[:, None] * design)
    coef = np.linalg.solve(normal, design.T @ (weights * ly))
    residual = ly - design @ coef
    dof = x.size - 2
    cov = np.linalg.inv(normal)
    if correction:
        def model(t, c, a, d):
            return c + a * t + np.log1p(d * np.exp(-t))

        params, cov = optimize.curve_fit(model, lx, ly, p0=[coef[0], coef[1], 0.0],
                                         sigma=y_se / y, absolute_sigma=True, maxfev=20000)
        coef = params[:2]
        residual = ly - model(lx, *params)
        dof = x.size - 3
    inflation = max(1.0, float(weights @ residual ** 2) / dof)
    se = math.sqrt(cov[1, 1] * inflation)
    half = stats.t.ppf(0.5 + level / 2.0, dof) * se
    return Slope(float(coef[1]), se, float(coef[1] - half), float(coef[1] + half),
                 float(coef[0]), int(x.size))
