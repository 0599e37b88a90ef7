"""Outcome metrics of negotiations over the true utilities, as NegMAS defines them (two-party
for the convex-hull model; the finite model P for any number of parties).

Theory layer: NumPy and JAX only (from ``eqx_jax`` only :mod:`eqx_jax.checks`), so that the games
are checked against it, not the other way round.

For an agreement with utilities ``u = (u_0, u_1)`` and a reference set of outcomes, NegMAS
(``negmas.preferences.ops``: ``calc_scenario_stats``, ``calc_outcome_distances``,
``calc_outcome_optimality``) defines, with ``d_i`` the disagreement point (the reservation value
``r_i``, or the lowest utility if ``r_i`` is below it) and ``max_dist = sqrt(sum_i (max_i -
min_i)^2)`` over the utility ranges of the outcome space (``estimate_max_dist``):

* ``pareto_optimality = max(0, 1 - pareto_distance / max_dist)``, ``pareto_distance`` the
  Euclidean distance from ``u`` to the Pareto frontier;
* ``nash_optimality = max(0, 1 - |u - N| / max_dist)``, N the point of the frontier maximising
  ``(u_0 - d_0)(u_1 - d_1)``;
* ``kalai_optimality``: the same for NegMAS's "Kalai" point, the egalitarian solution (Kalai
  1977) maximising ``min_i (u_i - d_i)``;
* ``ks_optimality``: the same for the Kalai-Smorodinsky point, where the relative gains
  ``(u_i - d_i) / (max_i - d_i)`` are equal (NegMAS: the smallest max - min of them);
* ``max_welfare_optimality = max(0, (u_0 + u_1) / W)``, W the largest ``u_0 + u_1`` on the
  frontier.

Two evaluation models of NegMAS, both here:

* the **single-negotiation model P** (NegMAS's default): the frontier is the set of
  undominated *rational* outcomes (``u_i >= r_i``) of a finite outcome set, and N, Kalai, KS, W
  are searched among its points (:func:`finite_reference`, :func:`finite_optimality`; NumPy,
  for discrete scenarios after play);
* the **convex-hull model P-infinity** (NegMAS's ``convex_hull=True``): the frontier is the
  Pareto boundary of the convex hull of the outcome utilities, and the points lie anywhere on
  it. For linear-additive utilities with linear value functions over continuous issues the set
  of utility pairs *is* convex (the image of a box under a linear map), so this is the exact
  frontier of the continuous game; for discrete issues it adds the mixtures of outcomes. Its
  frontier is computed exactly and cheaply: each issue's own Pareto hull chain (which depends on
  its value functions only, not on the weights, since positive weights scale the axes) is
  precomputed (:func:`issue_chains`); per episode the weighted edges of all issues, sorted by
  slope, trace the frontier of their Minkowski sum (:func:`hull_frontier`, JAX), and
  :func:`frontier_optimality` (JAX, jit/vmap-able) gives the metrics in closed form. The envs
  use this one inside their jitted step.

Utilities are in utility units (the multi-issue game's are in [0, 1]); shapes are stated per
function.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

#: The per-agreement metrics, in this order, of both models.
METRICS: tuple[str, ...] = ("pareto_distance", "pareto_optimality", "nash_optimality",
                            "kalai_optimality", "ks_optimality", "max_welfare_optimality")
_TINY = 1e-12


# ------------------------------------------------------------------ per-issue hull chains
def pareto_chain(points: np.ndarray) -> np.ndarray:
    """Indices of the Pareto-efficient convex-hull vertices of 2-D ``points`` (n, 2), from the
    one with the largest second coordinate (ties: largest first) to the one with the largest
    first coordinate; consecutive vertices differ by (+, -) steps of decreasing slope."""
    pts = np.asarray(points, float)
    cur = int(np.lexsort((pts[:, 0], pts[:, 1]))[-1])
    chain = [cur]
    while True:
        dx = pts[:, 0] - pts[cur, 0]
        cand = dx > _TINY
        if not cand.any():
            return np.asarray(chain)
        slope = np.where(cand, (pts[:, 1] - pts[cur, 1]) / np.where(cand, dx, 1.0), -np.inf)
        best = slope.max()
        # Collinear candidates: jump to the farthest, so every edge is a hull edge.
        ties = cand & (slope >= best - 1e-12 * max(1.0, abs(best)))
        cur = int(np.flatnonzero(ties)[np.argmax(dx[ties])])
        chain.append(cur)


def issue_chains(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto hull chain of every issue's value points, as arrays for :func:`hull_frontier`.

    ``tables``: (2, K, V) value functions of agents 0 and 1 at each issue's V points (a
    continuous issue with linear value functions needs only its two ends). Returns ``start``
    (2, K), the value of each agent at the start of issue k's chain (agent 1's best point), and
    ``steps`` (2, K, M): the value changes along the chain's M edges (padded with zeros)."""
    tables = np.asarray(tables, float)
    chains = [pareto_chain(tables[:, k, :].T) for k in range(tables.shape[1])]
    m = max(1, max(len(c) - 1 for c in chains))
    start = np.stack([tables[:, k, c[0]] for k, c in enumerate(chains)], axis=1)
    steps = np.zeros((2, tables.shape[1], m))
    for k, c in enumerate(chains):
        if len(c) > 1:
            steps[:, k, :len(c) - 1] = np.diff(tables[:, k, c], axis=1)
    return start, steps


def hull_frontier(weights: jax.Array, start: jax.Array, steps: jax.Array) -> jax.Array:
    """(K M + 1, 2) float32 vertices of the P-infinity Pareto frontier of a linear-additive
    scenario, from agent 1's best outcome to agent 0's (repeated vertices where edges are
    padding or vanish).

    ``weights`` (2, K) per agent; ``start`` (2, K) and ``steps`` (2, K, M) from
    :func:`issue_chains`. Edges that gain nothing for agent 0 are dropped (they only lose for
    agent 1); edges that lose nothing for agent 1 are taken at once (the start moves along
    them), so every remaining edge is a strict trade-off, taken in order of agent 1's loss per
    unit of agent 0's gain."""
    w = jnp.asarray(weights, jnp.float32)
    e0 = (w[0][:, None] * steps[0]).reshape(-1)
    e1 = (w[1][:, None] * steps[1]).reshape(-1)
    gains = e0 > _TINY
    free = gains & (e1 >= -_TINY)
    trade = gains & ~free
    origin = jnp.stack([jnp.sum(w[0] * start[0]) + jnp.sum(jnp.where(free, e0, 0.0)),
                        jnp.sum(w[1] * start[1]) + jnp.sum(jnp.where(free, e1, 0.0))])
    key = jnp.where(trade, -e1 / jnp.where(trade, e0, 1.0), jnp.inf)
    # Vertex j sums the edges of rank < j (rank: position in the stable sort by key). Counting
    # ranks by pairwise comparison instead of a sort keeps the whole computation elementwise,
    # so XLA fuses it into the env step (a vmapped argsort is a separate sort call per episode).
    n = key.shape[0]
    idx = jnp.arange(n)
    before = (key[None, :] < key[:, None]) | ((key[None, :] == key[:, None])
                                              & (idx[None, :] < idx[:, None]))
    rank = jnp.sum(before, axis=1)
    taken = (rank[None, :] < jnp.arange(n + 1)[:, None]).astype(jnp.float32)  # (n + 1, n)
    steps_taken = jnp.stack([jnp.sum(taken * jnp.where(trade, e0, 0.0), axis=1),
                             jnp.sum(taken * jnp.where(trade, e1, 0.0), axis=1)], axis=-1)
    return origin[None] + steps_taken


# ------------------------------------------------------------ P-infinity metrics (JAX)
def _segments(vertices: jax.Array) -> tuple[jax.Array, jax.Array]:
    a = vertices[:-1]
    return a, vertices[1:] - a


def _pick(values: jax.Array, points: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The point (2,) with the largest value among the valid candidates, and whether any is."""
    v = jnp.where(valid, values, -jnp.inf)
    i = jnp.argmax(v)
    return points[i], valid[i]


def _candidates(a: jax.Array, e: jax.Array, s: jax.Array) -> jax.Array:
    """Points a + s e of every segment (S, 2) at parameters s (S, C) -> (S C, 2)."""
    return (a[:, None, :] + jnp.clip(s, 0.0, 1.0)[..., None] * e[:, None, :]).reshape(-1, 2)


def nash_point(vertices: jax.Array, d: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(point (2,), exists) maximising (u_0 - d_0)(u_1 - d_1) over the frontier polyline with
    both factors positive (``exists`` False when no such point: NegMAS has no Nash point)."""
    a, e = _segments(vertices)
    g0, g1 = a[:, 0] - d[0], a[:, 1] - d[1]
    den = 2.0 * e[:, 0] * e[:, 1]
    stat = jnp.where(jnp.abs(den) > _TINY,
                     -(e[:, 0] * g1 + e[:, 1] * g0) / jnp.where(jnp.abs(den) > _TINY, den, 1.0),
                     0.0)
    s = jnp.stack([jnp.zeros_like(stat), jnp.ones_like(stat), stat], axis=1)
    pts = _candidates(a, e, s)
    adv = pts - d
    return _pick(adv[:, 0] * adv[:, 1], pts, (adv[:, 0] > _TINY) & (adv[:, 1] > _TINY))


def kalai_point(vertices: jax.Array, d: jax.Array) -> jax.Array:
    """(2,) the egalitarian point: maximises min_i (u_i - d_i) over the frontier polyline (the
    optimum over the hull, since every hull point is weakly dominated by a frontier point)."""
    a, e = _segments(vertices)
    slope = e[:, 0] - e[:, 1]
    cross = jnp.where(jnp.abs(slope) > _TINY,
                      ((a[:, 1] - d[1]) - (a[:, 0] - d[0])) / jnp.where(
                          jnp.abs(slope) > _TINY, slope, 1.0), 0.0)
    s = jnp.stack([jnp.zeros_like(cross), jnp.ones_like(cross), cross], axis=1)
    pts = _candidates(a, e, s)
    adv = pts - d
    return _pick(jnp.minimum(adv[:, 0], adv[:, 1]), pts, jnp.ones(pts.shape[0], bool))[0]


def ks_point(vertices: jax.Array, d: jax.Array, best: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(point (2,), exists): the Kalai-Smorodinsky point, where the ray from d towards the
    ideal point ``best`` leaves the comprehensive hull (NegMAS's LP: the largest t in [0, 1]
    with d + t (best - d) weakly dominated by a hull point; its point is that hull point)."""
    direction = best - d
    a, e = _segments(vertices)
    # Ray d + t dir meets segment a + s e: solve [dir, -e] (t, s) = a - d.
    det = -direction[0] * e[:, 1] + direction[1] * e[:, 0]
    ok = jnp.abs(det) > _TINY
    safe = jnp.where(ok, det, 1.0)
    rx, ry = a[:, 0] - d[0], a[:, 1] - d[1]
    t_seg = (-rx * e[:, 1] + ry * e[:, 0]) / safe
    s_seg = (direction[0] * ry - direction[1] * rx) / safe
    on_seg = ok & (s_seg >= -1e-9) & (s_seg <= 1 + 1e-9)
    first, last = vertices[0], vertices[-1]
    # The comprehensive hull extends left of the first vertex and below the last one.
    t_top = (first[1] - d[1]) / jnp.maximum(direction[1], _TINY)
    on_top = d[0] + t_top * direction[0] <= first[0] + 1e-9
    t_side = (last[0] - d[0]) / jnp.maximum(direction[0], _TINY)
    on_side = d[1] + t_side * direction[1] <= last[1] + 1e-9
    pts = jnp.concatenate([a + jnp.clip(s_seg, 0.0, 1.0)[:, None] * e, first[None], last[None]])
    ts = jnp.concatenate([t_seg, t_top[None], t_side[None]])
    valid = jnp.concatenate([on_seg, on_top[None], on_side[None]])
    point, found = _pick(ts, pts, valid)
    t = jnp.max(jnp.where(valid, ts, -jnp.inf))
    return point, found & (t >= -1e-9)


def polyline_distance(u: jax.Array, vertices: jax.Array) -> jax.Array:
    """() Euclidean distance from ``u`` (2,) to the polyline through ``vertices`` (F, 2)."""
    a, e = _segments(vertices)
    den = jnp.sum(e * e, axis=1)
    s = jnp.where(den > 0, jnp.sum((u - a) * e, axis=1) / jnp.where(den > 0, den, 1.0), 0.0)
    near = a + jnp.clip(s, 0.0, 1.0)[:, None] * e
    dist = jnp.sqrt(jnp.sum(jnp.square(u - near), axis=1))
    return jnp.minimum(jnp.min(dist), jnp.sqrt(jnp.sum(jnp.square(u - vertices[-1]))))


def frontier_optimality(u: jax.Array, vertices: jax.Array, reservation: jax.Array,
                        worst: jax.Array | None = None, best: jax.Array | None = None
                        ) -> dict[str, jax.Array]:
    """NegMAS's P-infinity metrics (:data:`METRICS`, () float32 each) of one agreement.

    ``u`` (2,) the agreement's utilities; ``vertices`` (F, 2) the frontier
    (:func:`hull_frontier`); ``reservation`` (2,); ``worst``/``best`` (2,) each agent's lowest
    and highest utility over the outcome space (default 0 and 1, the multi-issue game's
    normalisation). A metric without its point (no Nash or KS point when no outcome is better
    than disagreement for both) is NaN, as in NegMAS. Use ``jax.vmap`` for a batch."""
    u = jnp.asarray(u, jnp.float32)
    vertices = jnp.asarray(vertices, jnp.float32)
    worst = jnp.zeros(2, jnp.float32) if worst is None else jnp.asarray(worst, jnp.float32)
    best = jnp.ones(2, jnp.float32) if best is None else jnp.asarray(best, jnp.float32)
    d = jnp.maximum(jnp.asarray(reservation, jnp.float32), worst)
    max_dist = jnp.sqrt(jnp.sum(jnp.square(best - worst)))

    def optimality(dist):
        return jnp.maximum(0.0, 1.0 - dist / max_dist)

    def dist_to(p):
        return jnp.sqrt(jnp.sum(jnp.square(u - p)))

    pareto = polyline_distance(u, vertices)
    nash, has_nash = nash_point(vertices, d)
    ks, has_ks = ks_point(vertices, d, best)
    welfare = jnp.max(jnp.sum(vertices, axis=1))
    nan = jnp.float32(jnp.nan)
    return {
        "pareto_distance": pareto,
        "pareto_optimality": optimality(pareto),
        "nash_optimality": jnp.where(has_nash, optimality(dist_to(nash)), nan),
        "kalai_optimality": optimality(dist_to(kalai_point(vertices, d))),
        "ks_optimality": jnp.where(has_ks, optimality(dist_to(ks)), nan),
        "max_welfare_optimality": jnp.where(welfare > _TINY,
                                            jnp.maximum(0.0, jnp.sum(u) / welfare), nan),
    }


# --------------------------------------------------------- P model (finite outcome sets)
@dataclasses.dataclass(frozen=True)
class FiniteReference:
    """NegMAS's solution points of a finite outcome set (model P), float64 arrays (n_j, N) (N
    parties: 2 in the two-party games, 2..8 in the group game):
    ``pareto`` the undominated rational outcomes; ``nash``, ``kalai``, ``ks``: their maximisers
    (all ties within eps, as NegMAS lists them); ``max_welfare`` the largest sum_i u_i on the
    frontier (NaN without one); ``max_dist`` the normalisation of the distances."""

    pareto: np.ndarray
    nash: np.ndarray
    kalai: np.ndarray
    ks: np.ndarray
    max_welfare: float
    max_dist: float


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """(n,) bool: the points (n, N) not dominated by another (>= in all, > in one)."""
    p = np.asarray(points, float)
    ge = np.all(p[None, :, :] >= p[:, None, :], axis=2)
    gt = np.any(p[None, :, :] > p[:, None, :], axis=2)
    return ~np.any(ge & gt, axis=1)


def finite_reference(points: np.ndarray, reservation: np.ndarray, eps: float = 1e-12
                     ) -> FiniteReference:
    """The model-P reference of the outcome utilities ``points`` (n, N) (NegMAS's
    ``calc_scenario_stats``): ranges over all outcomes, the rational Pareto frontier, and the
    Nash, Kalai (egalitarian), KS and max-welfare points searched on it."""
    pts = np.asarray(points, float)
    r = np.asarray(reservation, float)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    d = np.where(r < lo, lo, r)
    rational = pts[np.all(pts >= r, axis=1)]
    front = rational[pareto_mask(rational)] if len(rational) else np.zeros((0, pts.shape[1]))
    max_dist = float(np.sqrt(np.sum(np.square(hi - lo))))
    if not len(front) or np.any(hi - d <= eps):
        # NegMAS: no frontier, no points; a range of zero width makes every frontier point one.
        welfare = float(front.sum(axis=1).max()) if len(front) else float("nan")
        return FiniteReference(front, front, front, front, welfare, max_dist)
    adv = front - d
    nash_v = np.prod(adv, axis=1)
    kalai_v = adv.min(axis=1)
    rel = adv / (hi - d)
    ks_v = rel.max(axis=1) - rel.min(axis=1)
    return FiniteReference(
        pareto=front, nash=front[nash_v >= nash_v.max() - eps],
        kalai=front[kalai_v >= kalai_v.max() - eps], ks=front[ks_v <= ks_v.min() + eps],
        max_welfare=float(front.sum(axis=1).max()), max_dist=max_dist)


def _nearest(u: np.ndarray, pts: np.ndarray) -> np.ndarray:
    if not len(pts):
        return np.full(u.shape[0], np.nan)
    return np.sqrt(np.square(u[:, None, :] - pts[None]).sum(-1)).min(axis=1)


def finite_optimality(u: np.ndarray, ref: FiniteReference) -> dict[str, np.ndarray]:
    """Model-P metrics (:data:`METRICS`) of agreements with utilities ``u`` (n, N) -> (n,)
    float64 each (NegMAS's ``calc_outcome_distances`` + ``calc_outcome_optimality``; NaN where
    NegMAS has no point)."""
    u = np.atleast_2d(np.asarray(u, float))

    def opt(dist):
        return np.maximum(0.0, 1.0 - dist / ref.max_dist) if ref.max_dist > 1e-12 else dist * np.nan

    pareto = _nearest(u, ref.pareto)
    welfare = (np.maximum(0.0, u.sum(axis=1) / ref.max_welfare)
               if abs(ref.max_welfare) > 1e-12 else np.full(u.shape[0], np.nan))
    return {"pareto_distance": pareto, "pareto_optimality": opt(pareto),
            "nash_optimality": opt(_nearest(u, ref.nash)),
            "kalai_optimality": opt(_nearest(u, ref.kalai)),
            "ks_optimality": opt(_nearest(u, ref.ks)), "max_welfare_optimality": welfare}
