"""Multi-agent PPO for the bargaining game, PureJaxRL style: the whole training loop is jitted.

Read top to bottom: :class:`PPOConfig` (every knob, validated), the actor-critic network and its
hybrid action distribution (a masked categorical action type + a bounded continuous price), the
turn-taking advantage estimator :func:`turn_based_gae`, then :func:`make_train_chunked` /
:func:`make_train` (init, rollout with ``lax.scan``, GAE, ``update_epochs`` x ``num_minibatches``
clipped-PPO updates with Adam), and finally the helpers that turn trained parameters into a
policy (:func:`policy_action`, :func:`make_policy`, :func:`evaluate`).

Usage::

    cfg = PPOConfig(total_timesteps=200_000, env={"supplier_low": 5000, "supplier_high": 5000})
    train = make_train(cfg)
    runner_state, metrics = train(jax.random.key(cfg.seed))
    # metrics["deal_rate"] has shape (num_seeds, num_updates)

    init, train_chunk = make_train_chunked(cfg)          # progress in chunks, same result
    runner = init(jax.random.key(cfg.seed))
    for _ in range(4):
        runner, m = train_chunk(runner, cfg.num_updates // 4)

Seeds: ``num_seeds`` independent runs train at once; the ``vmap`` over seeds is done *inside*
``init``/``train_chunk``/``train`` (the key is split into ``num_seeds`` keys), so every leaf of the
runner state and of the metrics has a leading ``(num_seeds,)`` axis, even for ``num_seeds == 1``.
Use :func:`seed_params` to pick one run's parameters.

Who plays (``opponent`` and ``ppo_roles``):

* ``opponent="self"`` (default): PPO plays both roles against itself; by default two separate
  networks (a supplier and a retailer network) learn simultaneously; with ``shared_network=True``
  one network plays both roles (it tells them apart by the ``role`` field of the observation).
* ``opponent="<negotiator>"`` (any name in :data:`eqx_jax.negotiators.NEGOTIATORS`): that classic
  negotiator is a fixed, untrained opponent. ``ppo_roles`` says which roles PPO learns:
  ``"supplier"`` (every env: PPO supplier vs the negotiator as retailer), ``"retailer"``
  (the reverse), or ``"both"`` (the envs are split in two halves: in the first half PPO is the
  supplier against the negotiator, in the second half the negotiator is the supplier against the
  PPO retailer; ``num_envs`` must be even). A role that PPO never plays has no network at all;
  with ``"both"``, a network's loss only covers the envs where it plays.
* ``opponent="policy"``: like a negotiator, but the fixed opponent is any policy
  ``(key, obs, env_params) -> action`` passed as ``opponent_policy`` to :func:`make_train` /
  :func:`make_train_chunked` (e.g. a frozen trained network, :func:`make_policy`; best responses
  in :mod:`eqx_jax.evaluate`). It is called, vmapped over envs, for every role PPO does not play
  (with ``ppo_roles="both"`` for both roles: it can read the observation's ``role`` field). It is
  never updated: it is a constant of the compiled program.

Turn-taking: see the comment block above :func:`turn_based_gae`.
Price head: see the comment block above :func:`price_log_prob`.
Rewards are multiplied by ``reward_scale`` (default ``10 / max_price``: a deal is worth O(1)) for
learning only; the reported returns are in the game's reward units.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct, traverse_util
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from eqx_jax.env import (
    AGENTS,
    COUNTER,
    OBS_INDEX,
    BargainingEnv,
    EnvParams,
    EnvState,
    action_mask,
    make_params,
)
from eqx_jax.negotiators import NEGOTIATORS, Policy, get_negotiator

PRICE_HEADS: tuple[str, ...] = ("beta", "tanh_normal")
PPO_ROLES: tuple[str, ...] = ("both", "supplier", "retailer")
#: ``PPOConfig.opponent`` value for a fixed opponent given as a callable (``opponent_policy``).
POLICY_OPPONENT = "policy"
#: Logit given to illegal action types: exp(-1e9) is exactly 0, so they are never sampled.
MASKED_LOGIT = -1e9
#: Beta samples are clipped to [UNIT_EPS, 1 - UNIT_EPS] so that their log-density stays finite.
UNIT_EPS = 1e-6
# Bounds of the price head's spread parameters (log concentration of the Beta, log std of the
# Gaussian before tanh): keep the densities finite and the updates well conditioned.
_LOG_KAPPA_RANGE = (-5.0, 10.0)
_LOG_STD_RANGE = (-5.0, 2.0)


# ==================================================================================== config
@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Every PPO knob; validated on construction (``ValueError`` naming the field and range).

    Units: ``total_timesteps`` counts env steps *per seed* (one env step = one round of one
    episode, whoever moves); an update consumes ``num_envs * num_steps`` env steps.

    The defaults are tuned for throughput on a small CPU while still learning the default game
    (README, Training): one shared network with a 32-unit torso, a tanh-normal price head, 2
    epochs x 2 minibatches of 8,192 samples per update, exploring starts, annealed learning rate
    and entropy bonus. Precise equilibrium play needs more gradient work per env step, e.g.
    ``num_envs: 256, num_steps: 32, update_epochs: 4, num_minibatches: 4, hidden: [64, 64],
    price_head: beta`` (configs/complete-info.yaml).
    """

    # optimisation
    lr: float = 3e-4  # Adam learning rate
    anneal_lr: bool = True  # linear decay of lr to 0 over the run
    max_grad_norm: float = 0.5  # optax.clip_by_global_norm, per network
    # PPO
    gamma: float = 0.99  # discount per *own decision* of an agent (see turn_based_gae)
    gae_lambda: float = 0.95
    clip_eps: float = 0.2  # policy ratio clip, also the value-function clip
    vf_coef: float = 0.5
    ent_coef: float = 0.01  # bonus on the entropy of both heads (type + price)
    anneal_ent: bool = True  # linear decay of ent_coef to 0 over the run
    update_epochs: int = 2
    num_minibatches: int = 2  # must divide num_envs * num_steps
    # data collection
    num_envs: int = 2048
    num_steps: int = 8  # rollout length (env steps per env per update)
    total_timesteps: int = 4_000_000  # per seed; num_updates = total // (num_envs * num_steps)
    reward_scale: float | None = None  # rewards x this for learning; None: 10 / max_price
    # exploring starts: this share of training episodes opens with 1..T-1 rounds of random
    # counter-offers (not trained on), so that off-path rounds are learned (see _build)
    explore_starts: float = 0.3
    # networks
    hidden: tuple[int, ...] = (32,)  # MLP torso widths (tanh), actor and critic each
    price_head: str = "tanh_normal"  # "tanh_normal" or "beta"
    shared_network: bool = True  # one network for both roles (the obs has a "role" field)
    # who plays: see the module docstring
    opponent: str = "self"  # "self", a negotiator name or "policy" (fixed, untrained opponent)
    ppo_roles: str = "both"  # "both", "supplier", "retailer" (only with a negotiator opponent)
    # runs
    seed: int = 0  # for callers: jax.random.key(config.seed)
    num_seeds: int = 1  # independent runs trained at once (vmap)
    # the game: overrides passed to eqx_jax.env.make_params, e.g. {"max_rounds": 6}
    env: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_history: int = 4  # offers in the observation (BargainingEnv(num_history))

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list | tuple):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.env, Mapping):
            object.__setattr__(self, "env", dict(self.env))
        self.validate()

    def __hash__(self) -> int:  # the env dict is not hashable; hash the plain-data form
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field and its allowed values."""
        _check_number("lr", self.lr, low=0.0, low_open=True)
        _check_bool("anneal_lr", self.anneal_lr)
        _check_bool("anneal_ent", self.anneal_ent)
        _check_number("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
        _check_number("gamma", self.gamma, low=0.0, high=1.0)
        _check_number("gae_lambda", self.gae_lambda, low=0.0, high=1.0)
        _check_number("clip_eps", self.clip_eps, low=0.0, low_open=True)
        _check_number("vf_coef", self.vf_coef, low=0.0)
        _check_number("ent_coef", self.ent_coef, low=0.0)
        _check_number("explore_starts", self.explore_starts, low=0.0, high=1.0)
        for name in ("update_epochs", "num_minibatches", "num_envs", "num_steps", "num_seeds",
                     "num_history"):
            _check_int(name, getattr(self, name), low=1)
        _check_int("total_timesteps", self.total_timesteps, low=1)
        _check_int("seed", self.seed, low=0)
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"total_timesteps must be >= num_envs * num_steps (= {self.batch_size}), "
                f"got {self.total_timesteps}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches must divide num_envs * num_steps (= {self.batch_size}), "
                f"got {self.num_minibatches}")
        if self.reward_scale is not None:
            _check_number("reward_scale", self.reward_scale, low=0.0, low_open=True)
        if (not isinstance(self.hidden, tuple) or not self.hidden
                or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1
                           for h in self.hidden)):
            raise ValueError(
                f"hidden must be a non-empty tuple of integers >= 1, got {self.hidden!r}")
        if self.price_head not in PRICE_HEADS:
            raise ValueError(f"price_head must be one of {list(PRICE_HEADS)}, "
                             f"got {self.price_head!r}")
        _check_bool("shared_network", self.shared_network)
        if self.opponent not in ("self", POLICY_OPPONENT) and self.opponent not in NEGOTIATORS:
            raise ValueError(f"opponent must be 'self' or one of {list(NEGOTIATORS)}, or "
                             f"'{POLICY_OPPONENT}' (with an opponent_policy passed to "
                             f"make_train), got {self.opponent!r}")
        if self.ppo_roles not in PPO_ROLES:
            raise ValueError(f"ppo_roles must be one of {list(PPO_ROLES)}, "
                             f"got {self.ppo_roles!r}")
        if self.opponent == "self" and self.ppo_roles != "both":
            raise ValueError("ppo_roles must be 'both' when opponent is 'self' (PPO plays "
                             f"both roles), got {self.ppo_roles!r}")
        if self.opponent != "self" and self.ppo_roles == "both" and self.num_envs % 2:
            raise ValueError("num_envs must be even when ppo_roles is 'both' with a negotiator "
                             f"opponent (half the envs per role), got {self.num_envs}")
        if not isinstance(self.env, dict):
            raise ValueError(f"env must be a dict of game settings, got {self.env!r}")
        make_params(**self.env)  # raises ValueError naming the game setting

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PPOConfig:
        """Build from a plain dict (e.g. parsed JSON/YAML); unknown keys are rejected."""
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(allowed))
        if unknown:
            raise ValueError(f"unknown PPOConfig key(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    # ------------------------------------------------------------- derived values
    @property
    def batch_size(self) -> int:
        """Env steps per update (per seed)."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def env_params(self) -> EnvParams:
        return make_params(**self.env)

    @property
    def reward_scale_value(self) -> float:
        if self.reward_scale is not None:
            return float(self.reward_scale)
        return 10.0 / float(self.env_params.max_price)

    @property
    def learners(self) -> dict[str, tuple[str, ...]]:
        """Network name -> the roles it plays. Only roles PPO plays have a network."""
        roles = AGENTS if self.ppo_roles == "both" else (self.ppo_roles,)
        if self.shared_network:
            return {"shared": roles}
        return {r: (r,) for r in roles}

    def network_for(self, role: str) -> str:
        """Name of the network (key of the params dict) that plays ``role``."""
        for name, roles in self.learners.items():
            if role in roles:
                return name
        raise ValueError(f"PPO does not play the {role} in this config "
                         f"(opponent={self.opponent!r}, ppo_roles={self.ppo_roles!r})")

    def ppo_envs(self, role: str) -> np.ndarray:
        """(num_envs,) bool: in which envs PPO plays ``role`` (else the negotiator does)."""
        n = self.num_envs
        if self.opponent == "self":
            return np.ones(n, bool)
        if self.ppo_roles == "both":
            first_half = np.arange(n) < n // 2
            return first_half if role == AGENTS[0] else ~first_half
        return np.full(n, self.ppo_roles == role)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _check_number(name, value, *, low=None, high=None, low_open=False) -> None:
    ok_type = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool)
    ok = ok_type and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        if low is not None and high is not None:
            rng = f"in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}]"
        elif low is not None:
            rng = f"{'>' if low_open else '>='} {_fmt(low)}"
        else:
            rng = "a finite number"
        raise ValueError(f"{name} must be {rng}, got {value!r}")


def _check_int(name, value, *, low) -> None:
    if (isinstance(value, bool) or not isinstance(value, int | np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_bool(name, value) -> None:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be a bool (true/false), got {value!r}")


# =================================================================================== network
#: Variance scale of each layer's kernel (variance_scaling, fan_in, normal); default 1.0
#: (lecun-normal, suited to tanh). The output heads start near zero: uniform legal action types,
#: a broad price distribution around mid-range.
KERNEL_SCALES: dict[str, float] = {"type_logits": 1e-4, "price_params": 1e-4}


def _dense(features: int, name: str) -> nn.Dense:
    # variance_scaling / lecun-normal style init: NOT orthogonal (a jitted PPO loop hung inside
    # LAPACK's QR with orthogonal init on the development machine).
    init = nn.initializers.variance_scaling(KERNEL_SCALES.get(name, 1.0), "fan_in", "normal")
    return nn.Dense(features, kernel_init=init, bias_init=nn.initializers.zeros, name=name)


#: Scale of the role-relative input features: a 1000-unit gap (max_price 10000) is 1.0.
FEATURE_SCALE = 10.0


def role_features(obs: jax.Array) -> jax.Array:
    """Role-relative features appended to the observation, ``(..., 3)``.

    With sign +1 for the supplier (sells high) and -1 for the retailer: the gain of accepting the
    standing offer ``sign * (offer - own_value)``, the perceived size of the deal zone
    ``sign * (belief_mean - own_value)``, and ``sign * (offer - belief_mean)`` (0 without an
    offer), times :data:`FEATURE_SCALE`. They are functions of the agent's own observation only;
    they spare the network from learning, from inputs that differ by ~0.05, the sharp
    "accept iff the offer beats my valuation" threshold (without them, self-play learned it too
    slowly: the supplier priced above the retailer's valuation and both ended up walking away).
    """
    i = OBS_INDEX
    sign = 1.0 - 2.0 * obs[..., i["role"]]
    own, has = obs[..., i["own_value"]], obs[..., i["has_offer"]]
    offer, belief = obs[..., i["standing_offer"]], obs[..., i["belief_mean"]]
    feats = jnp.stack([has * sign * (offer - own), sign * (belief - own),
                       has * sign * (offer - belief)], axis=-1)
    return FEATURE_SCALE * feats


class ActorCritic(nn.Module):
    """Actor-critic for one role (or both, shared). Input: observation(s) ``(..., obs_size)``.

    Returns ``(logits, price_params, value)``: ``logits (..., 3)`` over ACCEPT/COUNTER/WALK_AWAY
    with illegal types (action mask in the observation) set to :data:`MASKED_LOGIT`;
    ``price_params (..., 2)`` raw parameters of the price head (see :func:`price_log_prob`);
    ``value (...)`` the critic. Actor and critic have separate tanh MLP torsos (PureJaxRL); both
    read the observation plus :func:`role_features`. Layers are named (``actor_i``,
    ``type_logits``, ``price_params``, ``critic_i``, ``value``); see :func:`init_network`.
    """

    hidden: tuple[int, ...] = (64, 64)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        x = jnp.concatenate([obs, role_features(obs)], axis=-1)
        actor = x
        for i, width in enumerate(self.hidden):
            actor = nn.tanh(_dense(width, f"actor_{i}")(actor))
        logits = _dense(3, "type_logits")(actor)
        logits = jnp.where(action_mask(obs), logits, MASKED_LOGIT)
        price_params = _dense(2, "price_params")(actor)
        critic = x
        for i, width in enumerate(self.hidden):
            critic = nn.tanh(_dense(width, f"critic_{i}")(critic))
        value = _dense(1, "value")(critic)[..., 0]
        return logits, price_params, value


def init_network(key: jax.Array, hidden: tuple[int, ...], obs_size: int) -> dict:
    """Parameters of ``ActorCritic(hidden)``: same distribution as ``ActorCritic.init``, faster.

    Every kernel ~ Normal(0, scale / fan_in) (:data:`KERNEL_SCALES`), biases 0, as the layers'
    own initializers, but drawn with *one* random call for the whole network: each separate
    draw adds a threefry kernel to compile (~0.3 s each on CPU), which made ``init`` take
    seconds to compile.
    """
    net = ActorCritic(tuple(hidden))
    shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((obs_size,), jnp.float32))
    flat = traverse_util.flatten_dict(shapes)
    total = sum(math.prod(leaf.shape) for path, leaf in flat.items() if path[-1] == "kernel")
    noise = jax.random.normal(key, (total,), jnp.float32)
    out, start = {}, 0
    for path, leaf in flat.items():
        if path[-1] == "kernel":
            size = math.prod(leaf.shape)
            std = math.sqrt(KERNEL_SCALES.get(path[-2], 1.0) / leaf.shape[0])
            out[path] = std * noise[start:start + size].reshape(leaf.shape)
            start += size
        else:
            out[path] = jnp.zeros(leaf.shape, leaf.dtype)
    return traverse_util.unflatten_dict(out)


# ============================================================== hybrid action distribution
# The action is (action_type, price). The type is Categorical over the *masked* logits. The price
# only matters when the type is COUNTER, so the log-probability of the hybrid action is
#     log pi(type) + [type == COUNTER] * log p(price)
# i.e. the exact log-density of the action the env actually executes (an ACCEPT/WALK_AWAY is the
# same action whatever price came with it), and the price head only gets gradient from counters.
#
# Price head. The network's two price outputs (m, s) parametrize a distribution on the unit
# interval u in (0, 1); the env gets price = max_price * u.
# * "beta": u ~ Beta(1 + mu*kappa, 1 + (1-mu)*kappa), mu = sigmoid(m) in (0, 1) is the *mode*,
#   kappa = exp(s) > 0 the concentration (both parameters >= 1: unimodal, finite density). The
#   stored "raw" price sample is u itself (clipped to [1e-6, 1 - 1e-6] so its log-density is
#   finite; the clip moves a tiny probability mass onto the two clip points).
# * "tanh_normal": z ~ Normal(m, exp(s)), u = (tanh(z) + 1) / 2. The stored raw sample is z (never
#   atanh of a saturated u, which would be unstable).
# price_log_prob is the log-density of the *scaled price* P = max_price * u, change of variables
# included: log p_P(P) = log p_u(u) - log(max_price) for the Beta, and for the tanh-normal
# log p_P(P) = log N(z; m, sd) - log(max_price / 2) - log(1 - tanh(z)^2). The Jacobian terms do not
# depend on the network parameters, so they cancel exactly in PPO's ratio pi_new / pi_old: old
# and new log-probs are always evaluated on the same stored raw sample with the same formula.
# Entropies (bonus and metrics) are on the unit interval: the Beta's exact entropy of u, and for
# the tanh-normal the entropy of the pre-squash Gaussian z (the squashed one has no closed form).
def _beta_params(price_params: jax.Array) -> tuple[jax.Array, jax.Array]:
    mu = jax.nn.sigmoid(price_params[..., 0])
    kappa = jnp.exp(jnp.clip(price_params[..., 1], *_LOG_KAPPA_RANGE))
    return 1.0 + mu * kappa, 1.0 + (1.0 - mu) * kappa


# lgamma and digamma for arguments >= 1 (the Beta head's a, b >= 1): shift the argument by 6
# with the recurrences Gamma(x + 1) = x Gamma(x), psi(x + 1) = psi(x) + 1/x, then the asymptotic
# (Stirling) series, whose error at z >= 7 is below 1e-9, under float32 rounding. Why not
# jax.lax.lgamma/digamma: XLA's CPU kernels for them and for their derivatives (digamma and
# trigamma = polygamma(1), in the gradient of the Beta's log-density and entropy) were the most
# expensive part of a PPO update (the tanh-normal head, which needs none of them, trained ~1.5x
# faster). These are a dozen multiply-adds and a few logs, and autodiff differentiates them.
_SHIFT = 6


def _lgamma_ge1(x: jax.Array) -> jax.Array:
    """log Gamma(x) for x >= 1 (float32 accuracy)."""
    z = x + _SHIFT
    shift = (jnp.log(x * (x + 1.0)) + jnp.log((x + 2.0) * (x + 3.0))
             + jnp.log((x + 4.0) * (x + 5.0)))
    zi = 1.0 / z
    zi2 = zi * zi
    series = zi * (1.0 / 12.0 - zi2 * (1.0 / 360.0 - zi2 * (1.0 / 1260.0)))
    return (z - 0.5) * jnp.log(z) - z + 0.5 * math.log(2.0 * math.pi) + series - shift


def _digamma_ge1(x: jax.Array) -> jax.Array:
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
    ``distrax.Beta`` (they agree, see the tests), on :func:`_lgamma_ge1` / :func:`_digamma_ge1`.
    Keep a, b and a + b as separate arrays: stacking them into one (3, ...) array made XLA's CPU
    fusion of the log-density + entropy gradient ~30x slower.
    """
    a, b = _beta_params(price_params)
    return a, b, _lgamma_ge1(a) + _lgamma_ge1(b) - _lgamma_ge1(a + b)


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
    return (log_beta_fn - (a - 1.0) * _digamma_ge1(a) - (b - 1.0) * _digamma_ge1(b)
            + (a + b - 2.0) * _digamma_ge1(a + b))


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
    the two computations are identical, made XLA's CPU fusion of the loss gradient duplicate
    the lgamma/digamma series into every consumer, ~20x slower.
    """
    if price_head != "beta":
        return (price_log_prob(price_params, raw, price_head, max_price),
                price_entropy(price_params, price_head))
    terms = _beta_terms(price_params)
    return _beta_log_prob(terms, raw, max_price), _beta_entropy(terms)


def _gamma_ge1(key: jax.Array, alpha: jax.Array) -> jax.Array:
    """Exact Gamma(alpha, 1) samples for alpha >= 1 (Marsaglia & Tsang 2000), elementwise.

    Why not ``jax.random.gamma``: it runs a separate rejection loop per element (with a key split
    per element), which took ~2.5 s of compile time and a good part of the rollout on CPU. Here
    each element takes its first accepted proposal of a sequence: the first three proposals for
    the whole batch at once (>= 95 % acceptance per proposal for alpha >= 1, so all but ~1e-4 of
    the elements are done), then a loop that proposes for the batch until every element is done
    (usually zero iterations; the loop as a whole used to cost ~2x the three at once).
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
    """A raw price sample (see the comment block above)."""
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


def _type_log_softmax(logits: jax.Array) -> list[jax.Array]:
    """log_softmax of the ``(..., 3)`` action-type logits, as three ``(...)`` arrays.

    The same numbers as ``jax.nn.log_softmax`` / ``distrax.Categorical``, written elementwise:
    XLA's CPU backend runs reductions over a size-3 axis slowly (the categorical's log-prob and
    entropy and their gradients were ~15 % of a default PPO update).
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


def hybrid_log_prob(logits: jax.Array, action_type: jax.Array,
                    price_logp: jax.Array) -> jax.Array:
    """log pi(type) + [type == COUNTER] log p(price), given the price's log-density."""
    return (type_log_prob(logits, action_type)
            + jnp.where(action_type == COUNTER, price_logp, 0.0))


def action_log_prob(logits, price_params, action_type, raw, price_head, max_price):
    """Log-probability (density) of the hybrid action; see the comment block above."""
    return hybrid_log_prob(logits, action_type,
                           price_log_prob(price_params, raw, price_head, max_price))


def sample_action(key, logits, price_params, price_head):
    """(action_type int32, raw price) sampled from the heads; illegal types never come out."""
    k_type, k_price = jax.random.split(key)
    action_type = jax.random.categorical(k_type, logits).astype(jnp.int32)
    return action_type, sample_price(k_price, price_params, price_head)


# ============================================================ turn-taking credit assignment
# At every env step one agent moves (the env applies only the mover's action). Each agent
# learns only from its *decisions*: the steps where it is the mover (``my_turn`` is 1 in its own
# observation), PPO plays that role in that env, and the move is not an exploring start's random
# counter. Its other steps are not in its loss (the rollout only stores the mover's sample; see
# ``_build``), and the advantage estimator skips them:
#
# * the reward of a decision at step t is the sum of the rewards the agent receives from step t up
#   to (not including) its next decision in the same episode, i.e. its own step's reward plus the
#   reward of the opponent's reply (a deal when the opponent accepts, a walk-away, a timeout);
# * the "next state" of a decision is the agent's next decision in the same episode; there is none
#   (value 0) when the episode ends before it (on either agent's move);
# * the discount gamma (and lambda) applies once per *own decision* (an agent's MDP only has its
#   own decision points; the game's rewards already decay with the round number);
# * all this is one reverse ``lax.scan`` over time per agent, carrying per env (value of the next
#   decision, its GAE advantage, rewards accumulated since). A ``done`` at step t resets the carry
#   to "terminal" *before* step t's reward is added, so the final reward is credited to the
#   agent's last decision of that episode even when the opponent ended it, and nothing leaks
#   across the auto-reset into the previous episode.
# * bootstrap at the end of a rollout of T steps (obs_T is the observation after the last step,
#   already of a new episode if step T-1 ended one, in which case the carry is reset anyway):
#   the agent whose turn it is at obs_T bootstraps with V(obs_T). The other agent's last decision
#   (at T-1) waits for the opponent's reply, which the rollout has not seen. Rather than dropping
#   that decision (which would drop counters but keep accepts at T-1, a biased sample), the loop
#   plays one *look-ahead* step from obs_T that is not committed (the next rollout restarts from
#   obs_T and draws the reply again): its reward r_T and done_T, and V(obs_{T+1}) of the agent
#   (obs_{T+1} is its turn again unless done_T), give the bootstrap carry
#   (value (1 - done_T) V(obs_{T+1}), advantage 0, accumulated reward r_T). This is a one-sample,
#   unbiased estimate of the continuation under the current policies.
def turn_based_gae(
    decision: jax.Array,
    reward: jax.Array,
    done: jax.Array,
    value: jax.Array,
    bootstrap_value: jax.Array,
    bootstrap_reward: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """GAE over one agent's own decisions. Time-major arrays ``(T, ...)``.

    decision: bool, the agent acted at step t (it is trained on that step).
    reward: the agent's reward from step t (paid after the mover's action at t).
    done: the episode ended at step t (the following step belongs to a new episode).
    value: the agent's V(obs_t) (only read where ``decision``).
    bootstrap_value, bootstrap_reward ``(...)``: the carry after the last step (see above):
    value of the agent's next decision after the rollout (0 if none) and the rewards it gets
    before it.
    Returns ``(advantages, returns)``, 0 where not ``decision``.
    """
    decision = decision.astype(bool)
    alive_f = 1.0 - done.astype(jnp.float32)

    def body(carry, x):
        next_value, next_adv, acc = carry
        d, r, alive, v = x
        next_value, next_adv, acc = next_value * alive, next_adv * alive, acc * alive
        r_total = r + acc
        delta = r_total + gamma * next_value - v
        adv = delta + gamma * gae_lambda * next_adv
        carry = (jnp.where(d, v, next_value), jnp.where(d, adv, next_adv),
                 jnp.where(d, 0.0, r_total))
        return carry, jnp.where(d, adv, 0.0)

    boot = jnp.asarray(bootstrap_value, jnp.float32)
    init = (boot, jnp.zeros_like(boot), jnp.asarray(bootstrap_reward, jnp.float32))
    xs = (decision, reward.astype(jnp.float32), alive_f, value.astype(jnp.float32))
    _, adv = jax.lax.scan(body, init, xs, reverse=True)
    return adv, jnp.where(decision, adv + value, 0.0)


# ================================================================================ training
@struct.dataclass
class RunnerState:
    """Everything the training loop carries (one run; a leading seed axis when batched).

    params / opt_state: dict network name (see ``PPOConfig.learners``) -> Flax params / Adam state.
    env_state, obs: the ``num_envs`` running episodes and both agents' current observations.
    explore_round: (num_envs,) i32, the running episode's rounds 1..explore_round are random
    counter-offers (exploring starts; 0: none).
    key: PRNG key. update: number of updates done so far (drives lr annealing).
    """

    params: dict
    opt_state: dict
    env_state: EnvState
    obs: dict
    explore_round: jax.Array
    key: jax.Array
    update: jax.Array


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    m = mask.astype(jnp.float32)
    return jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1.0)


def _mine_first(perm: jax.Array, mine: jax.Array, capacity: int) -> jax.Array:
    """The first ``capacity`` entries of ``perm`` reordered mine-first (a stable partition:
    ``perm[argsort(~mine, stable=True)]``), by prefix sums and a scatter instead of a sort."""
    mine = mine.astype(jnp.int32)
    n_mine = jnp.sum(mine)
    target = jnp.where(mine == 1, jnp.cumsum(mine) - 1, n_mine + jnp.cumsum(1 - mine) - 1)
    return jnp.zeros((capacity,), perm.dtype).at[target].set(perm, mode="drop",
                                                              unique_indices=True)


def permutation(key: jax.Array, n: int) -> jax.Array:
    """A random permutation of ``arange(n)``, ``(n,)`` int32: the minibatch shuffles.

    The same method as ``jax.random.permutation`` (sort the elements by random 32-bit keys,
    ties kept in their current order, repeated with fresh keys until the rounds hold at least
    3 log2(n) random bits), 4-6x faster on CPU. There, XLA sorts a (key, index) pair of arrays
    with a comparator callback (8-12 ms for 16,384 elements: the two shuffles were ~40 % of a
    default PPO update), while a single uint32 array sorts natively (~1 ms). So each round packs
    both into one uint32: ``b = bit_length(n - 1)`` low bits hold the position, the ``32 - b``
    high bits are random, and ``ceil(3 b / (32 - b))`` rounds keep jax's 3 log2(n) bits (2 rounds
    for 2,048 samples, 3 for 16,384). Beyond ``n = 2**24`` it falls back to jax's.
    """
    if n <= 1:
        return jnp.zeros((n,), jnp.int32)
    b = (n - 1).bit_length()
    if b > 24:  # too few random bits per round left: the general method
        return jax.random.permutation(key, n).astype(jnp.int32)
    rounds = -(-3 * b // (32 - b))
    low = jnp.uint32((1 << b) - 1)
    position = jnp.arange(n, dtype=jnp.uint32)
    perm = position
    for k in jax.random.split(key, rounds):
        bits = jax.random.bits(k, (n,), jnp.uint32)
        perm = perm[jnp.sort((bits & ~low) | position) & low]
    return perm.astype(jnp.int32)


def _fixed_opponent(config: PPOConfig, opponent_policy: Policy | None) -> Policy | None:
    """The fixed opponent's policy: ``opponent_policy`` iff ``config.opponent == "policy"``,
    else the named negotiator (None for self-play). ``ValueError`` on a mismatch."""
    if opponent_policy is not None:
        if config.opponent != POLICY_OPPONENT:
            raise ValueError(f"an opponent_policy was given but config.opponent is "
                             f"{config.opponent!r}; set opponent='{POLICY_OPPONENT}' to train "
                             "against it")
        if not callable(opponent_policy):
            raise ValueError("opponent_policy must be a callable (key, obs, env_params) -> "
                             f"action, got {opponent_policy!r}")
        return opponent_policy
    if config.opponent == POLICY_OPPONENT:
        raise ValueError(f"opponent='{POLICY_OPPONENT}' needs an opponent_policy "
                         "(key, obs, env_params) -> action passed to make_train / "
                         "make_train_chunked")
    return None if config.opponent == "self" else get_negotiator(config.opponent)


#: With several networks, each network's update batch holds at most this share of the
#: ``num_envs * num_steps`` samples of an update (its own decisions, packed; see ``_build``).
#: In self-play each of the two networks makes about half of the decisions (55-70 % for the
#: supplier, who opens); the few decisions beyond the share are left out of that update, a
#: uniformly random subset, reported as ``dropped_<network>``.
NETWORK_BATCH_SHARE = 0.75


def _build(config: PPOConfig, opponent_policy: Policy | None = None, mesh: Mesh | None = None):
    """Pure (unjitted, one-seed) ``init_one(key)`` and ``update_one(runner, _)``.

    ``mesh``: the device mesh of :func:`make_mesh`; the update pins its per-sample arrays to be
    split over the mesh's ``env`` axis (see ``on_envs``). It changes where the work runs, never
    what is computed.

    Data layout. In every env step exactly one agent moves (the env applies only the mover's
    action), so the rollout keeps one sample per (step, env): the *mover's* observation, action,
    log-probability and value; its ``decision`` flag says whether PPO made it (not a fixed
    opponent, not an exploring start). The L networks (``config.learners``) are stacked on a
    leading axis; with two networks both run on the N movers' observations and the mover's
    outputs are kept (cheaper on a CPU than gathering weights per env). For the update, each
    network gets a batch of its own decisions: all ``num_envs * num_steps`` samples when one
    network makes (nearly) all of them, else its decisions packed into
    :data:`NETWORK_BATCH_SHARE` of that size, so that no network spends its gradient work on the
    other one's samples.
    """
    env = BargainingEnv(config.num_history)
    env_params = config.env_params
    max_price = float(env_params.max_price)
    n_envs, n_steps = config.num_envs, config.num_steps
    batch = config.batch_size
    names = list(config.learners)  # L networks
    n_net = len(names)
    roles = [r for r in AGENTS if config.ppo_envs(r).any()]  # R roles played by PPO
    role_index = np.array([AGENTS.index(r) for r in roles])
    # Per agent (supplier, retailer): its network (0 if PPO never plays it: then never used) and
    # the envs where PPO plays it.
    agent_net = jnp.asarray([names.index(config.network_for(a)) if a in roles else 0
                             for a in AGENTS], jnp.int32)
    ppo_plays = np.stack([config.ppo_envs(a) for a in AGENTS])  # (2, N)
    has_fixed = not ppo_plays.all()
    ppo_plays = jnp.asarray(ppo_plays)
    negotiator = _fixed_opponent(config, opponent_policy)
    net = ActorCritic(config.hidden)
    head = config.price_head
    scale = config.reward_scale_value
    n_updates_total = config.num_updates
    steps_per_update = config.update_epochs * config.num_minibatches
    m = config.num_minibatches
    if config.opponent == "self" and n_net == 1:
        capacity = batch
    else:
        capacity = min(batch, -(-int(NETWORK_BATCH_SHARE * batch) // m) * m)

    def lr_at(count):
        if not config.anneal_lr:
            return jnp.asarray(config.lr, jnp.float32)
        frac = 1.0 - (count // steps_per_update) / n_updates_total
        return config.lr * jnp.maximum(frac, 0.0)

    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                     optax.adam(learning_rate=lr_at, eps=1e-5))
    v_reset = jax.vmap(env.reset, (0, None))
    v_step = jax.vmap(env.step, (0, 0, 0, None))

    def on_envs(tree, axis: int):
        """Split every leaf's ``axis`` (envs or samples) over the mesh's env axis.

        Sharding propagation alone tends to gather the batch onto every device at the
        permutations of the update; pinning the rollout, the update batch and each minibatch
        keeps every device on its share of the samples, so only the gradient sums (and the
        shuffles) cross devices. Under the seed vmap the seed axis is added by
        ``spmd_axis_name``.
        """
        if mesh is None or mesh.shape[ENV_AXIS] == 1:
            return tree

        def pin(x):
            spec = [None] * x.ndim
            spec[axis] = ENV_AXIS
            return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(*spec)))

        return jax.tree.map(pin, tree)

    def stack(by_name: dict):
        return jax.tree.map(lambda *xs: jnp.stack(xs), *[by_name[n] for n in names])

    def unstack(stacked) -> dict:
        return {n: jax.tree.map(lambda x, i=i: x[i], stacked) for i, n in enumerate(names)}

    def forward_movers(params_l, obs_m, mover):
        """The mover's network on the movers' observations ``(N, obs_size)``; mover (N,) i32."""
        if n_net == 1:
            return net.apply(jax.tree.map(lambda x: x[0], params_l), obs_m)
        outs = jax.vmap(net.apply, (0, None))(params_l, obs_m)
        second = agent_net[mover] == 1
        return jax.tree.map(
            lambda x: jnp.where(second.reshape(second.shape + (1,) * (x.ndim - 2)), x[1], x[0]),
            outs)

    def movers(env_state, obs):
        """(mover (N,) i32: 0 supplier / 1 retailer, its observation (N, obs_size))."""
        mover = (env_state.t & 1).astype(jnp.int32)  # the supplier moves in odd rounds
        return mover, jnp.where((mover == 0)[:, None], obs[AGENTS[0]], obs[AGENTS[1]])

    # Exploring starts. PPO only learns about the states its policies visit: in self-play the
    # agents settle on a path (say, a deal in round 2) and never learn what to do off it (say, a
    # retailer counter in round 3), so they can settle on an equilibrium that rests on threats
    # they would not carry out (Nash, not subgame perfect). With probability explore_starts an
    # episode opens with k ~ U{1..T-1} rounds of random counter-offers, prices ~ U[explore_lo,
    # explore_hi] (the valuation supports widened by 10 %), played by the env's own rules (history
    # and beliefs update as in any episode). Those moves are nobody's decisions (no loss); the
    # agents learn from round k + 1 on, in every subgame. Evaluation never uses it.
    horizon = int(env_params.max_rounds)
    explore = config.explore_starts > 0 and horizon > 1
    lo = min(float(env_params.supplier_low), float(env_params.retailer_low))
    hi = max(float(env_params.supplier_high), float(env_params.retailer_high))
    pad = 0.1 * max(hi - lo, 0.1 * max_price)
    explore_lo, explore_hi = max(lo - pad, 0.0), min(hi + pad, max_price)

    def draw_explore(key: jax.Array) -> jax.Array:
        """(N,) i32: rounds of random counter-offers that open each new episode (0: none)."""
        if not explore:
            return jnp.zeros((n_envs,), jnp.int32)
        # One uniform draw u for both choices: on iff u < p, and then u / p ~ U[0, 1) picks the
        # round (a second uniform plus randint's two draws were ~30 % of the random numbers of a
        # rollout step, and random numbers are a large part of the rollout on a CPU).
        u = jax.random.uniform(key, (n_envs,))
        p = config.explore_starts
        rounds = jnp.minimum(1 + jnp.floor(u / p * (horizon - 1)), horizon - 1)
        return jnp.where(u < p, rounds, 0).astype(jnp.int32)

    # ----------------------------------------------------------------------- init
    def init_one(key: jax.Array) -> RunnerState:
        key, k_env, k_net, k_explore = jax.random.split(key, 4)
        params = jax.vmap(lambda k: init_network(k, config.hidden, env.obs_size))(
            jax.random.split(k_net, n_net))
        opt_state = jax.vmap(tx.init)(params)
        obs, env_state = v_reset(jax.random.split(k_env, n_envs), env_params)
        return RunnerState(params=unstack(params), opt_state=unstack(opt_state),
                           env_state=env_state, obs=obs, explore_round=draw_explore(k_explore),
                           key=key, update=jnp.zeros((), jnp.int32))

    # ------------------------------------------------------------------- acting
    def act(params_l, env_state, obs, key, exploring):
        """The movers' env actions and, per env, the sample the update needs.

        ``exploring`` (N,) bool: this move is a random counter-offer of an exploring start.
        """
        k_net, k_fixed, k_explore = jax.random.split(key, 3)
        mover, obs_m = movers(env_state, obs)
        logits, pp, value = forward_movers(params_l, obs_m, mover)
        a_type, raw = sample_action(k_net, logits, pp, head)
        by_ppo = ppo_plays[mover, jnp.arange(n_envs)]
        sample = {
            "obs": obs_m, "action_type": a_type, "raw": raw, "value": value, "mover": mover,
            "logp": action_log_prob(logits, pp, a_type, raw, head, max_price),
            "decision": by_ppo & ~exploring,
        }
        env_type, env_price = a_type, unit_price(raw, head) * max_price
        if has_fixed:  # the fixed opponent moves where PPO does not play the mover's role
            fixed = jax.vmap(negotiator, (0, 0, None))(
                jax.random.split(k_fixed, n_envs), obs_m, env_params)
            env_type = jnp.where(by_ppo, env_type, fixed["action_type"])
            env_price = jnp.where(by_ppo, env_price, fixed["price"])
        if explore:
            env_type = jnp.where(exploring, COUNTER, env_type)
            env_price = jnp.where(exploring, jax.random.uniform(
                k_explore, (n_envs,), jnp.float32, explore_lo, explore_hi), env_price)
        # Both agents submit the mover's action: the env applies the mover's and ignores the other.
        action = {"action_type": env_type.astype(jnp.int32),
                  "price": env_price.astype(jnp.float32)}
        return {a: action for a in AGENTS}, sample

    # ----------------------------------------------------------------- one update
    def update_one(runner: RunnerState, _):
        params_l, opt_l = stack(runner.params), stack(runner.opt_state)

        # 1. Rollout: num_steps env steps of num_envs episodes, plus one look-ahead step for the
        #    bootstrap (see turn_based_gae): the scan runs num_steps + 1 steps, and the env state
        #    after num_steps steps is kept aside as the state the next rollout starts from.
        def env_step(carry, i):
            env_state, obs, explore_round, saved, key = carry
            key, k_act, k_env, k_explore = jax.random.split(key, 4)
            exploring = env_state.t < explore_round  # this move (round t + 1) is random
            explored_episode = explore_round > 0  # left out of the metrics
            actions, sample = act(params_l, env_state, obs, k_act, exploring)
            obs, env_state, rewards, dones, info = v_step(
                jax.random.split(k_env, n_envs), env_state, actions, env_params)
            if explore:  # a new episode (auto-reset) draws its exploring start
                explore_round = jnp.where(dones["__all__"], draw_explore(k_explore),
                                          explore_round)
            env_state, obs, explore_round = on_envs((env_state, obs, explore_round), 0)
            saved = jax.tree.map(lambda new, old: jnp.where(i == n_steps - 1, new, old),
                                 (env_state, obs, explore_round), saved)
            step = {"done": dones["__all__"], "reward": jnp.stack([rewards[a] for a in AGENTS]),
                    "info": {k: info[k] for k in _INFO_KEYS}, "ppo": sample,
                    "explored_episode": explored_episode}
            return (env_state, obs, explore_round, saved, key), step

        key, k_roll, k_pack, k_epochs = jax.random.split(runner.key, 4)
        start = (runner.env_state, runner.obs, runner.explore_round)
        (state_after_look, obs_after_look, _, (env_state, obs, explore_round), _), traj = (
            jax.lax.scan(env_step, (*start, start, k_roll), jnp.arange(n_steps + 1)))
        look = jax.tree.map(lambda x: x[n_steps], traj)
        traj = jax.tree.map(lambda x: x[:n_steps], traj)
        ppo = traj["ppo"]

        # 2. Advantages of each PPO role over its own decisions (turn_based_gae). Bootstrap:
        #    the role that moves after the rollout uses V(obs_T); the other one takes the
        #    look-ahead step's reward and its V at the observation after it (where it moves
        #    again), or 0 if the look-ahead step ended the episode.
        mover_after, obs_m_after = movers(state_after_look, obs_after_look)
        _, _, value_after_look = forward_movers(params_l, obs_m_after, mover_after)
        reward_r = traj["reward"][:, role_index] * scale  # (T, R, N)
        role_col = jnp.asarray(role_index)[:, None]  # (R, 1)
        decision_r = ppo["decision"][:, None] & (ppo["mover"][:, None] == role_col)
        turn = look["ppo"]["mover"][None] == role_col  # (R, N)
        boot_value = jnp.where(turn, look["ppo"]["value"][None],
                               jnp.where(look["done"], 0.0, value_after_look)[None])
        boot_reward = jnp.where(turn, 0.0, look["reward"][role_index] * scale)
        adv, target = turn_based_gae(
            decision_r, reward_r, jnp.broadcast_to(traj["done"][:, None], reward_r.shape),
            jnp.broadcast_to(ppo["value"][:, None], reward_r.shape), boot_value, boot_reward,
            config.gamma, config.gae_lambda)
        # The decision sets of the roles are disjoint: back to one sample per (step, env).
        data = {k: ppo[k] for k in ("obs", "action_type", "raw", "logp", "value")}
        data.update(advantage=adv.sum(1), target=target.sum(1),
                    net=jnp.where(ppo["decision"], agent_net[ppo["mover"]], -1))
        data = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]), data)  # (B, ...)
        data = on_envs(data, 0)

        # 3. Each network's batch (L, capacity): its own decisions, in a random order (packed
        #    first by a stable sort on "not mine" after a random permutation, so that when they
        #    exceed the capacity the ones left out are a uniformly random subset).
        if capacity < batch:
            perm = permutation(k_pack, batch)
            idx = jnp.stack([_mine_first(perm, data["net"][perm] == i, capacity)
                             for i in range(n_net)])
            data_l = jax.tree.map(lambda x: x[idx], data)
        else:  # every sample, in order: no gather (split over devices, one is an all-reduce)
            data_l = jax.tree.map(lambda x: jnp.broadcast_to(x[None], (n_net,) + x.shape), data)
        data_l["mask"] = data_l.pop("net") == jnp.arange(n_net)[:, None]
        mine = jnp.sum(data["net"][None] == jnp.arange(n_net)[:, None], axis=1)
        dropped = (mine - jnp.sum(data_l["mask"], axis=1)) / jnp.maximum(mine, 1)

        # 4. PPO: update_epochs x num_minibatches clipped updates, one Adam per network.
        #    Annealing the entropy bonus to 0 lets the policies become the sharp best responses
        #    an equilibrium needs (a fixed bonus converges to an entropy-regularised one).
        ent_coef = config.ent_coef
        if config.anneal_ent:
            ent_coef = ent_coef * jnp.maximum(1.0 - runner.update / n_updates_total, 0.0)
        def loss_fn(params, batch):
            logits, pp, value = net.apply(params, batch["obs"])
            mask = batch["mask"]
            p_logp, p_ent = price_log_prob_and_entropy(pp, batch["raw"], head, max_price)
            logp = hybrid_log_prob(logits, batch["action_type"], p_logp)
            log_ratio = logp - batch["logp"]
            ratio = jnp.exp(log_ratio)
            adv = batch["advantage"]
            adv_mean = _masked_mean(adv, mask)
            adv_std = jnp.sqrt(_masked_mean(jnp.square(adv - adv_mean), mask))
            adv = (adv - adv_mean) / (adv_std + 1e-8)
            clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
            pg_loss = _masked_mean(-jnp.minimum(ratio * adv, clipped * adv), mask)
            v_clipped = batch["value"] + jnp.clip(value - batch["value"], -config.clip_eps,
                                                  config.clip_eps)
            v_loss = 0.5 * _masked_mean(jnp.maximum(jnp.square(value - batch["target"]),
                                                    jnp.square(v_clipped - batch["target"])),
                                        mask)
            ent_type = _masked_mean(type_entropy(logits), mask)
            ent_price = _masked_mean(p_ent, mask)
            total = pg_loss + config.vf_coef * v_loss - ent_coef * (ent_type + ent_price)
            stats = {
                "policy_loss": pg_loss, "value_loss": v_loss, "entropy_type": ent_type,
                "entropy_price": ent_price,
                "approx_kl": _masked_mean((ratio - 1.0) - log_ratio, mask),
                "clip_frac": _masked_mean((jnp.abs(ratio - 1.0) > config.clip_eps), mask),
            }
            return total, stats

        grad_fn = jax.vmap(jax.grad(loss_fn, has_aux=True))  # over the L networks

        def epoch(carry, k_epoch):
            perm = permutation(k_epoch, capacity)

            def shuffle(x):  # (L, K, ...) -> (M, L, K / M, ...)
                x = jnp.swapaxes(x[:, perm].reshape((n_net, m, -1) + x.shape[2:]), 0, 1)
                return on_envs(x, 2)

            def minibatch(carry, batch):
                params, opt_state = carry
                grads, stats = grad_fn(params, batch)
                updates, opt_state = jax.vmap(tx.update)(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), stats

            return jax.lax.scan(minibatch, carry, jax.tree.map(shuffle, data_l))

        (params_l, opt_l), loss_stats = jax.lax.scan(
            epoch, (params_l, opt_l), jax.random.split(k_epochs, config.update_epochs))

        # 5. Metrics of this update.
        metrics = _rollout_metrics(traj, config)
        for k, v in loss_stats.items():  # (epochs, minibatches, L)
            for i, name in enumerate(names):
                metrics[f"{k}_{name}"] = jnp.mean(v[..., i])
        for i, name in enumerate(names):
            metrics[f"dropped_{name}"] = dropped[i]
        metrics["lr"] = lr_at(runner.update * steps_per_update)
        metrics["ent_coef"] = jnp.asarray(ent_coef, jnp.float32)

        runner = RunnerState(params=unstack(params_l), opt_state=unstack(opt_l),
                             env_state=env_state, obs=obs, explore_round=explore_round, key=key,
                             update=runner.update + 1)
        return runner, metrics

    return init_one, update_one


_INFO_KEYS = ("deal", "walk_away", "timeout", "price", "round", "nash_distance", "pareto_score",
              "supplier_share")


def _rollout_metrics(traj: dict, config: PPOConfig) -> dict[str, jax.Array]:
    """Means over the episodes that finished in this rollout (0 when there are none), leaving
    out those that had an exploring start (their first rounds were random).

    Per-deal means (like :func:`eqx_jax.metrics.summarize`): mean_price, nash_distance,
    pareto_score, supplier_share. Per-episode: deal_rate, walk_rate, timeout_rate, mean_rounds,
    and return_<role>: the episode return of that role in the envs where PPO plays it (rewards
    are paid on the final step only, so it is the final step's reward), in reward units (not
    scaled). ``episodes``/``deals``: how many finished in the rollout.
    """
    done = traj["done"] & ~traj["explored_episode"]
    info = traj["info"]
    deal = done & info["deal"]
    n_ep, n_deal = jnp.sum(done), jnp.sum(deal)
    out = {"episodes": n_ep.astype(jnp.float32), "deals": n_deal.astype(jnp.float32),
           "deal_rate": n_deal / jnp.maximum(n_ep, 1),
           "walk_rate": _masked_mean(info["walk_away"], done),
           "timeout_rate": _masked_mean(info["timeout"], done),
           "mean_rounds": _masked_mean(info["round"].astype(jnp.float32), done)}
    for k in ("price", "nash_distance", "pareto_score", "supplier_share"):
        out["mean_price" if k == "price" else k] = _masked_mean(info[k], deal)
    for i, role in enumerate(AGENTS):
        ppo_env = jnp.asarray(config.ppo_envs(role))
        out[f"return_{role}"] = _masked_mean(traj["reward"][:, i], done & ppo_env)
    return out


# ================================================================ devices and sharding
#: Axes of the device mesh: independent seeds, and the parallel envs of one seed.
SEED_AXIS, ENV_AXIS = "seed", "env"


def make_mesh(config: PPOConfig, devices: Sequence[jax.Device] | int | None = None) -> Mesh:
    """The ``(seed, env)`` device mesh a training run is split over.

    ``devices``: the devices (default: all of ``jax.devices()``, every host's under
    ``jax.distributed``), or how many of the first ones to use. The seed axis gets
    ``gcd(num_seeds, D)`` devices (independent runs need no communication), the env axis the
    rest: each device then steps ``num_envs / D_env`` envs of its seeds, and the gradients of
    every minibatch are summed across the env axis (an all-reduce) before each Adam step.
    ``ValueError`` if ``num_envs`` does not split evenly.
    """
    if devices is None:
        devices = jax.devices()
    elif isinstance(devices, int) and not isinstance(devices, bool):
        available = jax.devices()
        if not 1 <= devices <= len(available):
            raise ValueError(f"devices must be in [1, {len(available)}] (the visible "
                             f"{available[0].platform} devices), got {devices}")
        devices = available[:devices]
    devices = list(devices)
    if not devices:
        raise ValueError("devices must not be empty")
    n_seed = math.gcd(config.num_seeds, len(devices))
    n_env = len(devices) // n_seed
    if config.num_envs % n_env:
        raise ValueError(
            f"num_envs ({config.num_envs}) must be a multiple of the {n_env} devices the envs "
            f"are split over ({len(devices)} devices, {n_seed} of them for the "
            f"{config.num_seeds} seeds); change num_envs or use fewer devices")
    return Mesh(np.array(devices, dtype=object).reshape(n_seed, n_env), (SEED_AXIS, ENV_AXIS))


def runner_shardings(mesh: Mesh, runner: RunnerState) -> RunnerState:
    """Where each leaf of a (seed-batched) runner state lives: the running episodes split over
    seeds and envs, the networks, optimiser states and keys over seeds only (replicated on the
    env axis: every device of a seed holds the same parameters)."""
    by_seed = NamedSharding(mesh, P(SEED_AXIS))
    by_env = NamedSharding(mesh, P(SEED_AXIS, ENV_AXIS))
    out = jax.tree.map(lambda _: by_seed, runner)
    return out.replace(env_state=jax.tree.map(lambda _: by_env, runner.env_state),
                       obs=jax.tree.map(lambda _: by_env, runner.obs), explore_round=by_env)


def make_train_chunked(config: PPOConfig, opponent_policy: Policy | None = None,
                       devices: Sequence[jax.Device] | int | None = None):
    """``(init, train_chunk)`` for training in jitted chunks of updates (progress reports).

    ``opponent_policy``: the fixed opponent ``(key, obs, env_params) -> action`` when
    ``config.opponent == "policy"`` (required then, rejected otherwise); see the module docstring.

    ``devices``: see :func:`make_mesh` (default: every visible device). One code path for one
    device or many: the same program is compiled for the mesh and XLA partitions it (GSPMD),
    so the result does not depend on the device count beyond floating-point rounding (the sums
    of the loss and the gradients are added up in another order).

    ``init(key) -> runner_state``: jitted; splits ``key`` into ``num_seeds`` keys and vmaps.
    ``train_chunk(runner_state, num_updates) -> (runner_state, metrics)``: ``num_updates``
    updates (1 <= num_updates <= ``config.num_updates``) in one jitted call; metrics leaves are
    ``(num_seeds, num_updates)``. The update count is a *traced* loop bound (``fori_loop``; the
    metrics go to a buffer of ``config.num_updates`` rows that is cut to ``num_updates``), so all
    chunk lengths share one compilation, and chunks run back to back give exactly the result of
    one :func:`make_train` call of the same total length (it is the same program). Learning-rate
    annealing follows the update counter in the runner state, so it is unaffected by chunking.
    """
    mesh = make_mesh(config, devices)
    init_one, update_one = _build(config, opponent_policy, mesh)
    # Jitted so that its trace is cached: eval_shape (metric buffers) and the loop body share it.
    update_one = jax.jit(update_one)
    max_updates = config.num_updates

    def init(key: jax.Array) -> RunnerState:
        return jax.vmap(init_one, spmd_axis_name=SEED_AXIS)(
            jax.random.split(key, config.num_seeds))

    def run_updates(runner: RunnerState, num_updates: jax.Array):
        def one_seed(r):
            shapes = jax.eval_shape(update_one, r, None)[1]
            buf = jax.tree.map(lambda x: jnp.zeros((max_updates,) + x.shape, x.dtype), shapes)

            def body(i, carry):
                r, buf = carry
                r, m = update_one(r, None)
                return r, jax.tree.map(lambda b, x: b.at[i].set(x), buf, m)

            return jax.lax.fori_loop(0, num_updates, body, (r, buf))

        return jax.vmap(one_seed, spmd_axis_name=SEED_AXIS)(runner)

    key_shape = jax.eval_shape(lambda: jax.random.key(0))
    state_sharding = runner_shardings(mesh, jax.eval_shape(init, key_shape))
    # The metrics are small: every device (and host) gets all of them.
    replicated = NamedSharding(mesh, P())
    init_jit = jax.jit(init, in_shardings=replicated, out_shardings=state_sharding)
    run_jit = jax.jit(run_updates, in_shardings=(state_sharding, replicated),
                      out_shardings=(state_sharding, replicated))

    def train_chunk(runner: RunnerState, num_updates: int):
        if (isinstance(num_updates, bool) or not isinstance(num_updates, int | np.integer)
                or not 1 <= num_updates <= max_updates):
            raise ValueError(f"num_updates must be an integer in [1, {max_updates}] "
                             f"(config.num_updates), got {num_updates!r}")
        runner = jax.device_put(runner, state_sharding)  # e.g. restored from a checkpoint
        runner, metrics = run_jit(runner, jnp.int32(num_updates))
        return runner, jax.tree.map(lambda x: x[:, :num_updates], metrics)

    train_chunk.mesh = mesh
    return init_jit, train_chunk


def make_train(config: PPOConfig, opponent_policy: Policy | None = None,
               devices: Sequence[jax.Device] | int | None = None,
               ) -> Callable[[jax.Array], tuple[RunnerState, dict]]:
    """``train(key) -> (runner_state, metrics)``: the full run of ``config.num_updates`` updates.

    Every leaf has a leading ``(num_seeds,)`` axis; metrics are ``(num_seeds, num_updates)``.
    Built from the same jitted pieces as :func:`make_train_chunked` (init, then one chunk of
    every update: the update loop is a single jitted call). ``opponent_policy`` and ``devices``:
    see :func:`make_train_chunked`.
    """
    init, train_chunk = make_train_chunked(config, opponent_policy, devices)

    def train(key: jax.Array):
        return train_chunk(init(key), config.num_updates)

    return train


# ================================================================== using a trained policy
def seed_params(params: dict, index: int = 0) -> dict:
    """One run's parameters out of the seed-batched ``runner_state.params``."""
    return jax.tree.map(lambda x: x[index], params)


def policy_action(params, obs: jax.Array, key: jax.Array, deterministic: bool = False, *,
                  config: PPOConfig | None = None,
                  max_price: float | None = None) -> dict[str, jax.Array]:
    """Observation(s) ``(..., obs_size)`` -> env action, with one role's network ``params``.

    ``deterministic``: argmax over the legal types and the price head's mode (Beta) / mean
    (pre-tanh Gaussian); else a sample. ``config`` gives the network shape and price head
    (default: ``PPOConfig()``); ``max_price`` defaults to the config's game.
    """
    config = config or PPOConfig()
    if max_price is None:
        max_price = config.env_params.max_price
    logits, pp, _ = ActorCritic(config.hidden).apply(params, obs)
    if deterministic:
        a_type = jnp.argmax(logits, axis=-1).astype(jnp.int32)
        raw = greedy_price(pp, config.price_head)
    else:
        a_type, raw = sample_action(key, logits, pp, config.price_head)
    price = unit_price(raw, config.price_head) * jnp.asarray(max_price, jnp.float32)
    return {"action_type": a_type, "price": price.astype(jnp.float32)}


def make_policy(params, config: PPOConfig, deterministic: bool = False) -> Policy:
    """A trained network as a negotiator-style policy ``(key, obs, env_params) -> action``."""

    def policy(key, obs, env_params):
        return policy_action(params, obs, key, deterministic, config=config,
                             max_price=env_params.max_price)

    return policy


def default_sides(config: PPOConfig) -> tuple[str, str]:
    """Who plays (supplier, retailer) when a trained config is evaluated: ``"ppo"`` where the
    config trains the role, else its fixed opponent (for ``ppo_roles="both"`` against a
    negotiator: the PPO supplier vs the negotiator)."""
    supplier = "ppo" if config.ppo_roles in ("both", "supplier") else config.opponent
    retailer = ("ppo" if config.opponent == "self" or config.ppo_roles == "retailer"
                else config.opponent)
    return supplier, retailer


def resolve_policy(config: PPOConfig, params: dict, name: str, role: str, deterministic: bool,
                   opponent_policy: Policy | None = None) -> Policy:
    """The policy called ``name`` (``"ppo"``, ``"policy"`` or a negotiator) playing ``role``."""
    if name == "ppo":
        return make_policy(params[config.network_for(role)], config, deterministic)
    if name == POLICY_OPPONENT:
        if opponent_policy is None:
            raise ValueError(f"the {role} is the config's fixed opponent "
                             f"{POLICY_OPPONENT!r}: pass opponent_policy")
        return opponent_policy
    return get_negotiator(name)


def evaluate(config: PPOConfig, params: dict, key: jax.Array, num_episodes: int = 10_000,
             deterministic: bool = True, supplier: str | None = None,
             retailer: str | None = None,
             opponent_policy: Policy | None = None) -> dict[str, float]:
    """Play trained policies on the config's game; :func:`eqx_jax.metrics.summarize` output.

    ``params``: one run's params dict (see :func:`seed_params`). ``supplier``/``retailer``:
    ``"ppo"`` or a negotiator name; defaults: PPO where the config trains it, else the opponent
    (for ``ppo_roles="both"`` against a negotiator: the PPO supplier vs the negotiator).
    ``opponent_policy``: the policy that plays a side named ``"policy"`` (the fixed opponent of a
    config with ``opponent="policy"``).
    """
    from eqx_jax.metrics import summarize
    from eqx_jax.simulate import _to_numpy, play_batch

    defaults = default_sides(config)
    supplier = defaults[0] if supplier is None else supplier
    retailer = defaults[1] if retailer is None else retailer
    env_params = config.env_params
    sup = resolve_policy(config, params, supplier, AGENTS[0], deterministic, opponent_policy)
    ret = resolve_policy(config, params, retailer, AGENTS[1], deterministic, opponent_policy)
    env = BargainingEnv(config.num_history)
    record = jax.jit(lambda k: play_batch(k, env_params, sup, ret, num_episodes, env))(key)
    return summarize(_to_numpy(record, env_params))
