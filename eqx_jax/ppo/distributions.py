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

Discrete issues (the env's ``offer_levels``) are either played by rounding such a sample (the
"rounded" head) or by a masked categorical over the issue's values (the "categorical" head,
``PPOConfig.discrete_head``): see the "mixed offer head" section below (:class:`OfferHead`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import distrax
import jax
import jax.numpy as jnp
import numpy as np

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


# ================================================================== mixed offer head
# A game's discrete issues (the env's offer_levels, see eqx_jax.games.spec) are played either
# by rounding a continuous sample (the "rounded" head: every issue a Beta / tanh-normal over
# its padded range, the env rounds) or by a categorical over the values 0..n-1 (the
# "categorical" head). The categorical's logits are masked with the legal values of the state
# (eqx_jax.games.spec.offer_value_mask: the network sets the others to MASKED_LOGIT), so an
# illegal value has probability exactly 0. Issues are independent given the observation, so
#   log p(offer) = sum_continuous log p_d(x_d) + sum_discrete log pi_d(v_d),
# a density with respect to the product of Lebesgue measure (continuous issues) and counting
# measure (discrete ones): PPO's ratio pi_new / pi_old is a ratio of two densities with respect
# to the same measure, so it is well defined. The entropy of that product distribution with
# respect to the same measure is likewise the sum of the continuous issues' differential
# entropies (on the unit interval, as above) and the discrete issues' Shannon entropies (nats).
# The two kinds are on different scales (a differential entropy can be negative), but only the
# bonus's gradient matters and each term's gradient pushes its own issue towards spread; the
# metrics report the discrete part on its own as well (entropy_values).


#: Categoricals up to this many values are written per value column (see
#: :func:`_categorical_log_prob_and_entropy`); longer ones with vectorised reductions.
_UNROLL_MAX_VALUES = 16


class MixedOfferParams(NamedTuple):
    """The network's offer-head output for the categorical head: ``cont (..., Dc, 2)`` the
    continuous issues' (m, s) and ``logits (..., Dd, L)`` the discrete issues' masked logits
    (in the order of :attr:`OfferHead.cont` / :attr:`OfferHead.disc`)."""

    cont: jax.Array
    logits: jax.Array


@dataclasses.dataclass(frozen=True)
class OfferHead:
    """Static description of the offer head: ``price_head`` (the continuous issues' family)
    and ``levels`` (D,) per issue 0 continuous, n >= 2 a categorical over 0..n-1; ``levels=()``
    (or all 0) is the all-continuous head whose network output is the plain ``(..., D, 2)``
    array (the rounded head: the price game's and every game's before the categoricals)."""

    price_head: str
    levels: tuple[int, ...] = ()

    @property
    def categorical(self) -> bool:
        return any(self.levels)

    @property
    def cont(self) -> tuple[int, ...]:
        return tuple(d for d, n in enumerate(self.levels) if n == 0)

    @property
    def disc(self) -> tuple[int, ...]:
        return tuple(d for d, n in enumerate(self.levels) if n > 0)

    @property
    def num_values(self) -> int:
        """L: values of the largest discrete issue."""
        return max(self.levels, default=0)

    @staticmethod
    def take(x: jax.Array, index: tuple[int, ...], axis: int = -1) -> jax.Array:
        """``x``'s entries ``index`` along ``axis`` as static slices (an index-array gather
        is slow on XLA's CPU backend; the whole axis is ``x`` itself)."""
        if index == tuple(range(x.shape[axis])):
            return x
        if not index:
            shape = list(x.shape)
            shape[axis] = 0
            return jnp.zeros(shape, x.dtype)
        return jnp.stack([jnp.take(x, i, axis=axis) for i in index], axis=axis)

    def merge(self, cont: jax.Array, disc: jax.Array) -> jax.Array:
        """(..., D) from the continuous issues' ``(..., Dc)`` and discrete ``(..., Dd)``."""
        cols = {d: cont[..., i] for i, d in enumerate(self.cont)}
        cols.update({d: disc[..., i].astype(cont.dtype) for i, d in enumerate(self.disc)})
        return jnp.stack([cols[d] for d in range(len(self.levels))], axis=-1)

    def split(self, raw: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The inverse of :meth:`merge`: ``(cont (..., Dc), value indices (..., Dd) i32)``."""
        cont = self.take(raw, self.cont)
        return cont, jnp.round(self.take(raw, self.disc)).astype(jnp.int32)


def _categorical_log_prob_and_entropy(logits: jax.Array, idx: jax.Array
                                      ) -> tuple[jax.Array, jax.Array]:
    """(log pi(idx) (..., Dd), entropy (..., Dd)) of masked ``logits (..., Dd, L)``; masked
    values contribute exactly 0 to the entropy (exp(MASKED_LOGIT) is 0). Written per value
    column like the action type's (:func:`type_log_prob`, :func:`type_entropy`: XLA's CPU
    reductions and gathers over a short last axis are slow; a long one is vectorised)."""
    if logits.shape[-1] > _UNROLL_MAX_VALUES:
        log_p = jax.nn.log_softmax(logits, axis=-1)
        chosen = jnp.take_along_axis(log_p, idx[..., None], axis=-1)[..., 0]
        return chosen, -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)
    return type_log_prob(logits, idx), type_entropy(logits)


def sample_categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
    """(...) int32 samples of masked ``logits (..., L)`` by inverting the CDF with one
    uniform per distribution (``jax.random.categorical`` draws L Gumbel numbers per sample;
    random numbers are a large part of a CPU rollout). A masked value has probability exactly
    0, so its CDF step is empty and it never comes out; the uniform is scaled by the CDF's
    float total, and the pick is capped at the last legal value (rounding at the top)."""
    u = jax.random.uniform(key, logits.shape[:-1], logits.dtype)
    n_values = logits.shape[-1]
    if n_values > _UNROLL_MAX_VALUES:
        cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
        idx = jnp.sum(cdf[..., :-1] <= (u * cdf[..., -1])[..., None], axis=-1)
        legal = logits > 0.5 * MASKED_LOGIT
        last = n_values - 1 - jnp.argmax(legal[..., ::-1], axis=-1)
        return jnp.minimum(idx, last).astype(jnp.int32)
    log_p = _type_log_softmax(logits)
    cdf = jnp.exp(log_p[0])
    cdfs = [cdf]
    for lp in log_p[1:]:
        cdf = cdf + jnp.exp(lp)
        cdfs.append(cdf)
    x = u * cdf
    idx = sum((c <= x).astype(jnp.int32) for c in cdfs[:-1])
    last = functools.reduce(jnp.maximum, [jnp.where(logits[..., j] > 0.5 * MASKED_LOGIT, j, 0)
                                          for j in range(logits.shape[-1])])
    return jnp.minimum(idx, last).astype(jnp.int32)


def offer_log_prob_and_entropy(head: OfferHead, params, raw: jax.Array,
                               span: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(log-density of the offer (...), offer entropy (...), discrete part of it (...))``.

    ``raw (..., D)``: the stored sample (continuous issues' raw samples, discrete issues' value
    indices); ``span (D,)`` the issues' ranges (high - low). Sums over issues (see above)."""
    if not head.categorical:
        logp, ent = price_log_prob_and_entropy(params, raw, head.price_head, span)
        return jnp.sum(logp, axis=-1), jnp.sum(ent, axis=-1), jnp.zeros(logp.shape[:-1])
    cont, idx = head.split(raw)
    d_logp, d_ent = _categorical_log_prob_and_entropy(params.logits, idx)
    logp, ent = jnp.sum(d_logp, axis=-1), jnp.sum(d_ent, axis=-1)
    ent_values = ent
    if head.cont:
        c_logp, c_ent = price_log_prob_and_entropy(params.cont, cont, head.price_head,
                                                   head.take(span, head.cont))
        logp, ent = logp + jnp.sum(c_logp, axis=-1), ent + jnp.sum(c_ent, axis=-1)
    return logp, ent, ent_values


def offer_action_log_prob(head: OfferHead, logits: jax.Array, params, action_type: jax.Array,
                          raw: jax.Array, span: jax.Array) -> jax.Array:
    """Log-probability of the hybrid action (type, offer) under ``head`` (the rounded head:
    :func:`action_log_prob`, the same numbers)."""
    if not head.categorical:
        return action_log_prob(logits, params, action_type, raw, head.price_head, span)
    return hybrid_log_prob(logits, action_type,
                           offer_log_prob_and_entropy(head, params, raw, span)[0])


def sample_offer_action(key: jax.Array, head: OfferHead, logits: jax.Array, params
                        ) -> tuple[jax.Array, jax.Array]:
    """(action_type int32, raw offer (..., D)); a masked type or value never comes out (the
    rounded head: :func:`sample_action`, the same draws)."""
    if not head.categorical:
        return sample_action(key, logits, params, head.price_head)
    k_type, k_offer = jax.random.split(key)
    action_type = jax.random.categorical(k_type, logits).astype(jnp.int32)
    k_cont, k_disc = jax.random.split(k_offer)
    idx = sample_categorical(k_disc, params.logits)
    cont = (sample_price(k_cont, params.cont, head.price_head) if head.cont
            else params.cont[..., 0])
    return action_type, head.merge(cont, idx)


def greedy_offer(head: OfferHead, params) -> jax.Array:
    """Raw offer ``(..., D)`` of the greedy action: per continuous issue the mode (Beta) /
    mean (pre-tanh Gaussian), per discrete issue the most likely legal value."""
    if not head.categorical:
        return greedy_price(params, head.price_head)
    cont = greedy_price(params.cont, head.price_head) if head.cont else params.cont[..., 0]
    return head.merge(cont, jnp.argmax(params.logits, axis=-1))


def offer_units(head: OfferHead, raw: jax.Array, low: jax.Array, span: jax.Array) -> jax.Array:
    """The offer ``(..., D)`` in natural units from a raw sample: a continuous issue
    ``low + span * unit``, a discrete issue its value index itself (values are 0..n-1)."""
    scaled = low + unit_price(raw, head.price_head) * span
    if not head.categorical:
        return scaled
    disc = np.zeros(len(head.levels), bool)
    disc[list(head.disc)] = True
    return jnp.where(jnp.asarray(disc), raw, scaled)
