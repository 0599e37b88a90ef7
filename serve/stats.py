"""Confidence intervals of the server's reports, as ``{"mean", "low", "high", "n"}`` (all None
but ``n`` for an empty sample).

The normal interval is the core's :func:`eqx_jax.evaluate.mean_ci` (mean ± 1.96 std / sqrt(n)),
the one the evaluation reports use.
"""

from __future__ import annotations

import numpy as np

from eqx_jax import evaluate
from eqx_jax.evaluate import Z95

Interval = dict[str, float | int | None]


def _empty() -> Interval:
    return {"mean": None, "low": None, "high": None, "n": 0}


def mean_ci(x: np.ndarray) -> Interval:
    """Mean and 95 % normal-approximation interval of a sample."""
    x = np.asarray(x, np.float64)
    if x.size == 0:
        return _empty()
    mean, low, high = evaluate.mean_ci(x)
    return {"mean": mean, "low": low, "high": high, "n": int(x.size)}


def wilson(k: int, n: int) -> Interval:
    """A proportion ``k / n`` with its 95 % Wilson score interval."""
    if n == 0:
        return _empty()
    z, p = Z95, k / n
    d = 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return {"mean": p, "low": float(c - h), "high": float(c + h), "n": n}
