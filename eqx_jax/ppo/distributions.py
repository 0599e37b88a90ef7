"""The hybrid action distribution: a masked categorical action type and a bounded price.

The action is (action_type, price). The type is Categorical over the *masked* logits. The price
only matters when the type is COUNTER, so the log-probability of the hybrid action is
    log pi(type) + [type == COUNTER] * log p(price)
i.e. the exact log-density of the action the env actually executes (an ACCEPT/WALK_AWAY is the
same action whatever price came with it), and the price head only gets gradient from counters.

Price head. The network's two price outputs (m, s) parametrize a distribution on the unit
interval u in (0, 1); the env gets price = max_price * u. An offer of D issues (price and
quantity, the issues of a multi-issue game) has one such pair per issue, ``(..., D, 2)``,
independent given the observation: the offer's log-density is the sum over issues, each issue
scaled to its own range (``max_price`` below stands for that range, high - low).

* "beta": u ~ Beta(1 + mu*kappa, 1 + (1-mu)*kappa), mu = sigmoid(m) in (0, 1) is the *mode*,
  kappa = exp(s) > 0 the concentration (both parameters >= 1: unimodal, finite density). The
  stored "raw" price sample is u itself (clipped to [1e-6, 1 - 1e-6] so its log-density is
  finite; the clip moves a tiny probability mass onto the two clip points).
* "tanh_normal": z ~ Normal(m, exp(s)), u = (tanh(z) + 1) / 2. The stored raw sample is z (never
  atanh of a saturated u, which would be unstable).

:func:`price_log_prob` is the log-density of the *scaled price* P = max_price * u, change of
variables included: log p_P(P) = log p_u(u) - log(max_price) for the Beta, and for the
tanh-normal log p_P(P) = log N(z; m, sd) - log(max_price / 2) - log(1 - tanh(z)^2). The Jacobian
terms do not depend on the network parameters, so they cancel exactly in PPO's ratio
pi_new / pi_old: old and new log-probs are always evaluated on the same stored raw sample with
the same formula. Entropies (bonus and metrics) are on the unit interval: the Beta's exact
entropy of u, and for the tanh-normal the entropy of the pre-squash Gaussian z (the squashed one
has no closed form).
"""

from __future__ import annotations

import functools
import math

import distrax
import jax
import jax.numpy as jnp

from eqx_jax.env import COUNTER

#: Logit given to illegal action types: exp(-1e9) is exactly 0, so they are never sampled.
MASKED_LOGIT = -1e9
#: Beta samples are clipped to [UNIT_EPS, 1 - UNIT_EPS] so that their log-density stays finite.
UNIT_EPS = 1e-6
# Bounds of the price head's spread parameters (log concentration of the Beta, log std of the
# Gaussian before tanh): keep the densities finite and the updates well conditioned.
_LOG_KAPPA_RANGE = (-5.0, 10.0)
_LOG_STD_RANGE = (-5.0, 2.0)


# ================================================================================ price head
def _beta_params(price_params: jax.Array) -> tuple[jax.Array, jax.Array]:
    mu = jax.nn.sigmoid(price_params[..., 0])
    kappa = jnp.exp(jnp.clip(price_params[..., 1], *_LOG_KAPPA_RANGE))
    return 1.0 + mu * kappa, 1.0 + (1.0 - mu) * kappa


# lgamma and digamma for arguments >= 1 (the Beta head's a, b >= 1): shift the argument by 6
# with the recurrences Gamma(x + 1) = x Gamma(x), psi(x + 1) = psi(x) + 1/x, then the asymptotic
# (Stirling) series, whose error at z >= 7 is below 1e-9, under float32 rounding. Why not
# jax.lax.lgamma/digamma: XLA's CPU kernels for them and for their derivatives (digamma and
# trigamma = polygamma(1), in the gradient of the Beta's log-density and entropy) are the most
# expensive part of a PPO update (the tanh-normal head, which needs none of them, trains ~1.5x
# faster). These are a dozen multiply-adds and a few logs, and autodiff differentiates them.
_SHIFT = 6


def lgamma_ge1(x: jax.Array) -> jax.Array:
    """log Gamma(x) for x >= 1 (float32 accuracy)."""
    z = x + _SHIFT
    shift = (jnp.log(x * (x + 1.0)) + jnp.log((x + 2.0) * (x + 3.0))
             + jnp.log((x + 4.0) * (x + 5.0)))
    zi = 1.0 / z
    zi2 = zi * zi
    series = zi * (1.0 / 12.0 - zi2 * (1.0 / 360.0 - zi2 * (1.0 / 1260.0)))
    return (z - 0.5) * jnp.log(z) - z + 0.5 * math.log(2.0 * math.pi) + series - shift


def digamma_ge1(x: jax.Array) -> jax.Array:
    """psi(x) = d/dx log Gamma(x) for x >= 1 (float32 accuracy)."""
    z = x + _SHIFT
    shift = sum(1.0 / (x + k) for k in range(_SHIFT))
    zi = 1.0 / z
    zi2 = zi * zi
    series = zi2 * (1.0 / 12.0 - zi2 * (1.0 / 120.0 - zi2 * (1.0 / 252.0)))
    return jnp.log(z) - 0.5 * zi - series - shift


def _beta_terms(price_params: jax.Array):
    """(a, b, log B(a, b)) of the Beta price head.

    The Beta's log-density and entropy are written out here rather than taken from
    ``distrax.Beta`` (they agree, see the tests), on :func:`lgamma_ge1` / :func:`digamma_ge1`.
    Keep a, b and a + b as separate arrays: stacking them into one (3, ...) array makes XLA's
    CPU fusion of the log-density + entropy gradient ~30x slower.
    """
    a, b = _beta_params(price_params)
    return a, b, lgamma_ge1(a) + lgamma_ge1(b) - lgamma_ge1(a + b)


def _normal_params(price_params: jax.Array) -> tuple[jax.Array, jax.Array]:
    return price_params[..., 0], jnp.exp(jnp.clip(price_params[..., 1], *_LOG_STD_RANGE))


def _log1m_tanh_sq(z: jax.Array) -> jax.Array:
    """log(1 - tanh(z)^2), stable for large |z|."""
    return 2.0 * (math.log(2.0) - z - jax.nn.softplus(-2.0 * z))


def unit_price(raw: jax.Array, price_head: str) -> jax.Array:
    """The stored raw price sample -> the price as a fraction of max_price, in [0, 1]."""
    if price_head == "beta":
        return raw
    return (jnp.tanh(raw) + 1.0) / 2.0


def _beta_log_prob(terms, raw: jax.Array, max_price: float | jax.Array) -> jax.Array:
    a, b, log_beta_fn = terms
    return ((a - 1.0) * jnp.log(raw) + (b - 1.0) * jnp.log1p(-raw) - log_beta_fn
            - jnp.log(jnp.asarray(max_price, jnp.float32)))


def _beta_entropy(terms) -> jax.Array:
    a, b, log_beta_fn = terms
    return (log_beta_fn - (a - 1.0) * digamma_ge1(a) - (b - 1.0) * digamma_ge1(b)
            + (a + b - 2.0) * digamma_ge1(a + b))


def price_log_prob(price_params: jax.Array, raw: jax.Array, price_head: str,
                   max_price: float | jax.Array) -> jax.Array:
    """Log-density of the scaled price ``max_price * unit_price(raw)`` (change of variables)."""
    if price_head == "beta":
        return _beta_log_prob(_beta_terms(price_params), raw, max_price)
    max_price = jnp.asarray(max_price, jnp.float32)
    mean, std = _normal_params(price_params)
    return (distrax.Normal(mean, std).log_prob(raw) - jnp.log(max_price / 2.0)
            - _log1m_tanh_sq(raw))


def price_entropy(price_params: jax.Array, price_head: str) -> jax.Array:
    if price_head == "beta":
        return _beta_entropy(_beta_terms(price_params))
    mean, std = _normal_params(price_params)
    return distrax.Normal(mean, std).entropy()


def price_log_prob_and_entropy(price_params: jax.Array, raw: jax.Array, price_head: str,
                               max_price: float | jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(price_log_prob(...), price_entropy(...))`` from one evaluation of the head's terms.

    The PPO loss needs both: computing the Beta's terms twice (once per function), even though
    the two computations are identical, makes XLA's CPU fusion of the loss gradient duplicate
    the lgamma/digamma series into every consumer, ~20x slower.
    """
    if price_head != "beta":
        return (price_log_prob(price_params, raw, price_head, max_price),
                price_entropy(price_params, price_head))
    terms = _beta_terms(price_params)
    return _beta_log_prob(terms, raw, max_price), _beta_entropy(terms)


# ============================================================================ price sampling
def _gamma_ge1(key: jax.Array, alpha: jax.Array) -> jax.Array:
    """Exact Gamma(alpha, 1) samples for alpha >= 1 (Marsaglia & Tsang 2000), elementwise.

    Why not ``jax.random.gamma``: it runs a separate rejection loop per element (with a key split
    per element), which takes ~2.5 s of compile time and a good part of the rollout on CPU. Here
    each element takes its first accepted proposal of a sequence: the first three proposals for
    the whole batch at once (>= 95 % acceptance per proposal for alpha >= 1, so all but ~1e-4 of
    the elements are done), then a loop that proposes for the batch until every element is done
    (usually zero iterations; a loop for every proposal costs ~2x the three at once).
    """
    d = alpha - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)

    def propose(k, shape):
        k_x, k_u = jax.random.split(k)
        x = jax.random.normal(k_x, shape, alpha.dtype)
        u = jax.random.uniform(k_u, shape, alpha.dtype)
        v = (1.0 + c * x) ** 3
        log_v = jnp.log(jnp.where(v > 0, v, 1.0))
        ok = (v > 0) & (jnp.log(u) < 0.5 * x * x + d - d * v + d * log_v)
        return ok, d * v

    key, k_first = jax.random.split(key)
    ok, proposals = propose(k_first, (3,) + alpha.shape)
    first = jnp.argmax(ok, axis=0)  # the first accepted of the three (0 if none)
    sample = jnp.take_along_axis(proposals, first[None], axis=0)[0]

    def body(carry):
        k, done, sample = carry
        k, k_prop = jax.random.split(k)
        ok, proposal = propose(k_prop, alpha.shape)
        return k, done | ok, jnp.where(done, sample, proposal)

    init = (key, jnp.any(ok, axis=0), sample)
    _, _, sample = jax.lax.while_loop(lambda c: ~jnp.all(c[1]), body, init)
    return sample


def sample_beta(key: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """Exact Beta(a, b) samples for a, b >= 1: X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b)."""
    g = _gamma_ge1(key, jnp.stack([a, b]))
    return g[0] / (g[0] + g[1])


def sample_price(key: jax.Array, price_params: jax.Array, price_head: str) -> jax.Array:
    """A raw price sample (see the module docstring)."""
    if price_head == "beta":
        a, b = _beta_params(price_params)
        return jnp.clip(sample_beta(key, a, b), UNIT_EPS, 1.0 - UNIT_EPS)
    mean, std = _normal_params(price_params)
    return mean + std * jax.random.normal(key, mean.shape, mean.dtype)


def greedy_price(price_params: jax.Array, price_head: str) -> jax.Array:
    """Raw price of the greedy action: the Beta's mode mu, or the Gaussian's mean."""
    if price_head == "beta":
        return jnp.clip(jax.nn.sigmoid(price_params[..., 0]), UNIT_EPS, 1.0 - UNIT_EPS)
    return price_params[..., 0]


# =============================================================================== action type
def _type_log_softmax(logits: jax.Array) -> list[jax.Array]:
    """log_softmax of the ``(..., 3)`` action-type logits, as three ``(...)`` arrays.

    The same numbers as ``jax.nn.log_softmax`` / ``distrax.Categorical``, written elementwise:
    XLA's CPU backend runs reductions over a size-3 axis slowly (the categorical's log-prob and
    entropy and their gradients would be ~15 % of a default PPO update).
    """
    cols = [logits[..., i] for i in range(logits.shape[-1])]
    top = functools.reduce(jnp.maximum, cols)
    log_norm = top + jnp.log(sum(jnp.exp(c - top) for c in cols))
    return [c - log_norm for c in cols]


def type_log_prob(logits: jax.Array, action_type: jax.Array) -> jax.Array:
    """log pi(action_type) under the masked logits ``(..., 3)``; action_type ``(...)`` int."""
    log_p = _type_log_softmax(logits)
    out = log_p[-1]
    for i in range(len(log_p) - 2, -1, -1):
        out = jnp.where(action_type == i, log_p[i], out)
    return out


def type_entropy(logits: jax.Array) -> jax.Array:
    """Entropy of the action-type distribution ``(...)`` (masked types contribute exactly 0)."""
    return -sum(jnp.exp(lp) * lp for lp in _type_log_softmax(logits))


# ============================================================================ hybrid action
def hybrid_log_prob(logits: jax.Array, action_type: jax.Array,
                    price_logp: jax.Array) -> jax.Array:
    """log pi(type) + [type == COUNTER] log p(price), given the price's log-density."""
    return (type_log_prob(logits, action_type)
            + jnp.where(action_type == COUNTER, price_logp, 0.0))


def action_log_prob(logits, price_params, action_type, raw, price_head, span):
    """Log-probability (density) of the hybrid action; see the module docstring.

    ``price_params (..., D, 2)``, ``raw (..., D)``: one offer distribution per issue, ``span``
    (D,) the issues' ranges (high - low); the offer's density is the product over issues."""
    offer_logp = jnp.sum(price_log_prob(price_params, raw, price_head, span), axis=-1)
    return hybrid_log_prob(logits, action_type, offer_logp)


def sample_action(key, logits, price_params, price_head):
    """(action_type int32, raw price) sampled from the heads; illegal types never come out."""
    k_type, k_price = jax.random.split(key)
    action_type = jax.random.categorical(k_type, logits).astype(jnp.int32)
    return action_type, sample_price(k_price, price_params, price_head)
