"""The founding design's bargaining environment as a plain-Python PettingZoo ``ParallelEnv``.

This is what a user of the founding design would run: one episode at a time, Python floats for the
game and ``random.Random`` for the valuations, NumPy only to hand out the float32 observation arrays
that the PettingZoo/Gymnasium spaces require. The founding design's bugs are fixed and the rules are
exactly those of ``docs/rules.md``. It is written independently of ``eqx_jax`` (it imports nothing
from it) so that the two implementations can be checked against each other step by step, and it is
the speed baseline the vectorized JAX env is benchmarked against.

Usage::

    env = ReferenceBargainingEnv(max_rounds=10, reward_model="seed")
    obs, infos = env.reset(seed=0)  # options={"supplier_value": 5000.0} fixes a valuation
    while env.agents:
        actions = {a: {"action_type": COUNTER, "price": 6500.0} for a in env.agents}
        obs, rewards, terminations, truncations, infos = env.step(actions)

There is no auto-reset: on the final step ``terminations`` (deal / walk-away) or ``truncations``
(timeout after ``max_rounds``) are True for both agents, ``infos`` describe the episode, and
``env.agents`` becomes empty until the next ``reset``.

Units: prices and valuations are currency units, rewards reward units, ``t`` counts the rounds
(steps) played in the episode; observations are normalized by ``max_price`` and ``max_rounds``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

AGENTS: tuple[str, str] = ("supplier", "retailer")
SUPPLIER, RETAILER = 0, 1
ACCEPT, COUNTER, WALK_AWAY = 0, 1, 2
REWARD_MODELS: tuple[str, str] = ("seed", "discounted")

#: Observation fields before the offer history (same layout as the JAX env), in order.
OBS_FIELDS: tuple[str, ...] = (
    "own_value",  # own valuation / max_price
    "standing_offer",  # standing offer / max_price, 0 when there is none
    "has_offer",  # 1 if there is a standing offer
    "round",  # t / T: rounds played so far
    "time_remaining",  # (T - t) / T
    "role",  # 0 supplier, 1 retailer
    "my_turn",  # 1 if this agent's action is the one applied at the next step
    "belief_mean",  # belief about the opponent's valuation: mean / max_price
    "belief_std",  # belief about the opponent's valuation: std / max_price
    "deal_zone",  # |standing offer - belief_mean| / max_price, 0 when there is no offer
    "momentum",  # (opponent's last offer - its previous offer) / max_price, 0 if < 2 offers
    "mask_accept",  # ACCEPT legal: a standing offer exists and it is my turn
    "mask_counter",  # COUNTER always legal
    "mask_walk",  # WALK_AWAY always legal
)
MOMENTUM = OBS_FIELDS.index("momentum")

#: Margin of the seed model's speed-bonus test ``t + BONUS_EPS < bonus_fraction * T``.
BONUS_EPS = 1e-3

#: Per-episode metrics of the founding design (plus surplus shares), 0 unless the step is final.
METRIC_KEYS: tuple[str, ...] = (
    "nash_distance",
    "pareto_score",
    "negotiation_efficiency",
    "surplus_captured",
    "supplier_share",
    "retailer_share",
)


def _scalar(x: Any) -> Any:
    """A Python scalar from a scalar, a NumPy scalar or a length-1 array/list."""
    if isinstance(x, np.ndarray | list | tuple):
        arr = np.asarray(x)
        if arr.size != 1:
            raise ValueError(f"expected a scalar or a length-1 array, got shape {arr.shape}")
        return arr.item()
    return x


def episode_metrics(deal: bool, price: float, rounds: int, v_s: float, v_r: float,
                    max_rounds: int) -> dict[str, float]:
    """The founding design's metrics for one finished episode (0 where undefined, e.g. no deal).

    ``nash_distance`` |p - m| / m with m the midpoint (V_s + V_r) / 2; ``pareto_score`` the
    closeness of the split to 50/50 (0 outside [V_s, V_r]); ``negotiation_efficiency``
    min(1, 1 - rounds/T + 0.2 [rounds <= 3]); ``surplus_captured`` 1 for a deal with gains from
    trade; ``supplier_share``/``retailer_share`` (p - V_s) / S and (V_r - p) / S, S = V_r - V_s.
    """
    if not deal:
        return dict.fromkeys(METRIC_KEYS, 0.0)
    mid = (v_s + v_r) / 2
    half = (v_r - v_s) / 2
    if not v_s <= price <= v_r:
        pareto = 0.0
    elif half > 0:
        pareto = 1.0 - abs((price - v_s) - half) / half
    else:
        pareto = 1.0
    surplus = v_r - v_s
    gains = surplus > 0
    quick_bonus = 0.2 if rounds <= 3 else 0.0
    return {
        "nash_distance": abs(price - mid) / mid if mid > 0 else 0.0,
        "pareto_score": pareto,
        "negotiation_efficiency": min(1.0, 1.0 - rounds / max_rounds + quick_bonus),
        "surplus_captured": 1.0 if gains else 0.0,
        "supplier_share": (price - v_s) / surplus if gains else 0.0,
        "retailer_share": (v_r - price) / surplus if gains else 0.0,
    }


def _checked_reward_model(
    *, max_rounds: int, max_price: float, supplier_low: float, supplier_high: float,
    retailer_low: float, retailer_high: float, reward_model: str | int,
    bonus_fraction: float, discount: tuple[float, float], walk_payoff: tuple[float, float],
    timeout_payoff: tuple[float, float], belief_alpha: float, belief_beta: float,
    num_history: int,
) -> str:
    """Validate the game settings of :class:`ReferenceBargainingEnv` (``ValueError`` naming the
    first bad one) and return ``reward_model`` as its name ("seed" or "discounted").

    Prices and valuations in currency units; ``max_rounds`` and ``num_history`` are counts;
    ``discount`` factors in (0, 1]; fractions and belief rates in [0, 1].
    """
    if not isinstance(reward_model, str) and reward_model in (0, 1):
        reward_model = REWARD_MODELS[int(reward_model)]
    if reward_model not in REWARD_MODELS:
        raise ValueError(
            f"reward_model must be 'seed'/'discounted' (or 0/1), got {reward_model!r}")
    if int(max_rounds) != max_rounds or not 1 <= max_rounds <= 1000:
        raise ValueError(f"max_rounds must be an integer in [1, 1000], got {max_rounds!r}")
    if int(num_history) != num_history or num_history < 1:
        raise ValueError(f"num_history must be an integer >= 1, got {num_history!r}")
    if not 0.0 < max_price < math.inf:
        raise ValueError(f"max_price must be positive and finite, got {max_price!r}")
    for side, lo, hi in (("supplier", supplier_low, supplier_high),
                         ("retailer", retailer_low, retailer_high)):
        if not 0.0 <= lo <= hi <= max_price:
            raise ValueError(f"need 0 <= {side}_low <= {side}_high <= max_price, "
                             f"got {lo!r}, {hi!r}, {max_price!r}")
    pairs = {"discount": discount, "walk_payoff": walk_payoff, "timeout_payoff": timeout_payoff}
    for name, pair in pairs.items():
        if len(pair) != 2 or not all(math.isfinite(x) for x in pair):
            raise ValueError(f"{name} must be a pair of finite numbers, got {pair!r}")
    if not all(0.0 < d <= 1.0 for d in discount):
        raise ValueError(f"discount factors must be in (0, 1], got {discount!r}")
    for name, x in (("bonus_fraction", bonus_fraction), ("belief_alpha", belief_alpha),
                    ("belief_beta", belief_beta)):
        if not 0.0 <= x <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {x!r}")
    return reward_model


PROPOSERS: tuple[str, ...] = ("alternate", "supplier", "retailer")
RETAILER_PRIORS: tuple[str, ...] = ("uniform", "two_type")


def _named(name: str, value: str | int, names: tuple[str, ...]) -> str:
    """A setting given by name or by its index in ``names`` (the JAX env's codes)."""
    if isinstance(value, str) and value in names:
        return value
    if not isinstance(value, str | bool) and value in range(len(names)):
        return names[int(value)]
    raise ValueError(f"{name} must be one of {list(names)}, got {value!r}")


class ReferenceBargainingEnv(ParallelEnv):
    """Alternating-offers bargaining between a supplier and a retailer (``docs/rules.md``).

    The keyword arguments are the game settings of ``eqx_jax.env.EnvParams`` (same names, same
    defaults; ``reward_model`` may be given as "seed"/"discounted" or 0/1) plus ``num_history``,
    the number of past offers each observation carries.

    Observations: float32 vectors of size ``len(OBS_FIELDS) + num_history``: the fields of
    :data:`OBS_FIELDS`, then the last ``num_history`` offers / max_price, most recent first (0
    where fewer offers were made). Actions: ``{"action_type": 0 ACCEPT | 1 COUNTER | 2 WALK_AWAY,
    "price": float or length-1 array}``. Only the mover's action is applied (the supplier moves in
    odd rounds), so the other agent's action may be omitted.
    """

    metadata = {"name": "bargaining_reference_v1"}

    def __init__(
        self,
        *,
        max_rounds: int = 10,
        max_price: float = 10000.0,
        supplier_low: float = 4000.0,
        supplier_high: float = 6000.0,
        retailer_low: float = 7000.0,
        retailer_high: float = 9000.0,
        reward_model: str | int = "seed",
        speed_bonus: float = 5.0,
        bonus_fraction: float = 0.3,
        discount: tuple[float, float] = (0.95, 0.95),
        walk_payoff: tuple[float, float] = (-10.0, -10.0),
        timeout_payoff: tuple[float, float] = (-5.0, -5.0),
        belief_alpha: float = 0.3,
        belief_beta: float = 0.1,
        proposer: str | int = "alternate",
        retailer_prior: str | int = "uniform",
        retailer_high_prob: float = 0.5,
        num_history: int = 4,
    ):
        reward_model = _checked_reward_model(
            max_rounds=max_rounds, max_price=max_price, supplier_low=supplier_low,
            supplier_high=supplier_high, retailer_low=retailer_low, retailer_high=retailer_high,
            reward_model=reward_model, bonus_fraction=bonus_fraction, discount=discount,
            walk_payoff=walk_payoff, timeout_payoff=timeout_payoff, belief_alpha=belief_alpha,
            belief_beta=belief_beta, num_history=num_history)
        self.max_rounds = int(max_rounds)
        self.max_price = float(max_price)
        self.supplier_low, self.supplier_high = float(supplier_low), float(supplier_high)
        self.retailer_low, self.retailer_high = float(retailer_low), float(retailer_high)
        self.reward_model = reward_model
        self.speed_bonus = float(speed_bonus)
        self.bonus_fraction = float(bonus_fraction)
        self.discount = (float(discount[0]), float(discount[1]))
        self.walk_payoff = (float(walk_payoff[0]), float(walk_payoff[1]))
        self.timeout_payoff = (float(timeout_payoff[0]), float(timeout_payoff[1]))
        self.belief_alpha = float(belief_alpha)
        self.belief_beta = float(belief_beta)
        self.proposer = _named("proposer", proposer, PROPOSERS)
        self.two_types = _named("retailer_prior", retailer_prior, RETAILER_PRIORS) == "two_type"
        if not 0.0 <= retailer_high_prob <= 1.0:
            raise ValueError(f"retailer_high_prob must be in [0, 1], got {retailer_high_prob!r}")
        self.retailer_high_prob = float(retailer_high_prob)
        self.num_history = int(num_history)

        self._build_spaces()
        self._rng = random.Random()
        self._values = (0.0, 0.0)
        self._t = 0
        self._offers: list[float] = []
        self._belief_mean = [0.0, 0.0]
        self._belief_var = [0.0, 0.0]

    def _build_spaces(self) -> None:
        """The agents and their spaces: (len(OBS_FIELDS) + num_history,) float32 observations
        in [0, 1] (momentum in [-1, 1]); actions ``action_type`` Discrete(3) and ``price``
        (1,) float32 in [0, max_price] currency units."""
        self.possible_agents = list(AGENTS)
        self.agents = []
        obs_size = len(OBS_FIELDS) + self.num_history
        low = np.zeros(obs_size, np.float32)
        low[MOMENTUM] = -1.0
        high = np.ones(obs_size, np.float32)
        self.observation_spaces = {
            a: spaces.Box(low, high, shape=(obs_size,), dtype=np.float32) for a in AGENTS
        }
        self.action_spaces = {
            a: spaces.Dict({
                "action_type": spaces.Discrete(3),
                "price": spaces.Box(0.0, self.max_price, shape=(1,), dtype=np.float32),
            })
            for a in AGENTS
        }

    def observation_space(self, agent: str) -> spaces.Box:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Dict:
        return self.action_spaces[agent]

    # ------------------------------------------------------------------------------ reset
    def reset(self, seed: int | None = None, options: dict | None = None):
        """Start an episode. ``options`` may fix ``supplier_value`` and/or ``retailer_value``."""
        if seed is not None:
            self._rng = random.Random(seed)
        v_s = self._rng.uniform(self.supplier_low, self.supplier_high)
        if self.two_types:
            high = self._rng.random() < self.retailer_high_prob
            v_r = self.retailer_high if high else self.retailer_low
        else:
            v_r = self._rng.uniform(self.retailer_low, self.retailer_high)
        if options:
            v_s = float(options.get("supplier_value", v_s))
            v_r = float(options.get("retailer_value", v_r))
            for name, v in (("supplier_value", v_s), ("retailer_value", v_r)):
                if not 0.0 <= v <= self.max_price:
                    raise ValueError(f"{name} must be in [0, max_price], got {v!r}")
        self._values = (v_s, v_r)
        self._t = 0
        self._offers = []
        # Each agent's prior about the other is the other's (public) uniform prior.
        s_lo, s_hi, r_lo, r_hi = (self.supplier_low, self.supplier_high,
                                  self.retailer_low, self.retailer_high)
        self._belief_mean = [(r_lo + r_hi) / 2, (s_lo + s_hi) / 2]
        self._belief_var = [(r_hi - r_lo) ** 2 / 12, (s_hi - s_lo) ** 2 / 12]
        if self.two_types:  # the supplier's prior: the two-point distribution of V_r
            pi = self.retailer_high_prob
            self._belief_mean[0] = r_lo + pi * (r_hi - r_lo)
            self._belief_var[0] = (r_hi - r_lo) ** 2 * pi * (1 - pi)
        self.agents = list(AGENTS)
        return self._observations(), {a: {} for a in AGENTS}

    # ------------------------------------------------------------------------------- step
    def step(self, actions: dict[str, dict[str, Any]]):
        if not self.agents:
            raise RuntimeError("the episode is over: call reset() before step()")
        mover = self._t % 2
        if AGENTS[mover] not in actions:
            raise KeyError(f"no action for {AGENTS[mover]!r}, the mover in round {self._t + 1}")
        action = actions[AGENTS[mover]]
        a_type = min(max(int(_scalar(action["action_type"])), ACCEPT), WALK_AWAY)
        price = float(_scalar(action["price"]))

        # self._offers holds one entry per COUNTER: the price, or None for a rejection (a
        # counter by the side that may not offer, under one-sided offers).
        had_offer = bool(self._offers) and self._offers[-1] is not None
        illegal_accept = a_type == ACCEPT and not had_offer
        if illegal_accept:  # nothing to accept in round 1: a counter at the submitted price
            a_type = COUNTER
        self._t = t = self._t + 1
        v_s, v_r = self._values

        may_offer = self.proposer in ("alternate", AGENTS[mover])
        if a_type == COUNTER and not may_offer:
            self._offers.append(None)  # a rejection: the standing offer is withdrawn
        elif a_type == COUNTER:
            if math.isnan(price):  # repeat the standing offer, or open at one's own valuation
                price = self._offers[-1] if had_offer else self._values[mover]
            price = min(max(price, 0.0), self.max_price)
            self._offers.append(price)
            # The other agent updates its belief about the mover from the new offer.
            other = 1 - mover
            self._belief_mean[other] += self.belief_alpha * (price - self._belief_mean[other])
            self._belief_var[other] *= 1.0 - self.belief_beta

        deal = a_type == ACCEPT
        walk = a_type == WALK_AWAY
        timeout = a_type == COUNTER and t >= self.max_rounds  # a deal/walk in round T beats it
        deal_price = self._offers[-1] if deal else 0.0
        if deal:
            reward = self._deal_rewards(deal_price, t)
        elif walk:
            reward = self.walk_payoff
        elif timeout:
            reward = self.timeout_payoff
        else:
            reward = (0.0, 0.0)

        done = deal or walk or timeout
        info = {
            "done": done,
            "deal": deal,
            "walk_away": walk,
            "timeout": timeout,
            "illegal_accept": illegal_accept,
            "price": deal_price,
            "round": t,
            "surplus": v_r - v_s if deal else 0.0,
            "supplier_value": v_s,
            "retailer_value": v_r,
        }
        info.update(episode_metrics(deal, deal_price, t, v_s, v_r, self.max_rounds))

        obs = self._observations()
        rewards = {AGENTS[0]: reward[0], AGENTS[1]: reward[1]}
        terminations = {a: deal or walk for a in AGENTS}
        truncations = {a: timeout for a in AGENTS}
        infos = {a: dict(info) for a in AGENTS}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def _deal_rewards(self, price: float, t: int) -> tuple[float, float]:
        v_s, v_r = self._values
        gain_s, gain_r = price - v_s, v_r - price
        if self.reward_model == "seed":
            horizon = self.max_rounds
            scale = (1.0 - t / horizon) ** 2
            # "t < bonus_fraction * T", compared with a margin since rounds are integers (so that
            # e.g. round 15 of 50 gets no bonus at 0.3 although 0.3 * 50 is 15.000001 in float32).
            bonus = self.speed_bonus if t + BONUS_EPS < self.bonus_fraction * horizon else 0.0
            return gain_s * scale + bonus, gain_r * scale + bonus
        d_s, d_r = self.discount
        return gain_s * d_s**t, gain_r * d_r**t

    # ------------------------------------------------------------------------ observation
    def _observations(self) -> dict[str, np.ndarray]:
        p_max, horizon, t = self.max_price, self.max_rounds, self._t
        offers = self._offers
        has_offer = bool(offers) and offers[-1] is not None
        standing = offers[-1] if has_offer else 0.0
        k = self.num_history
        recent = [0.0 if x is None else x / p_max for x in reversed(offers[-k:])]
        recent += [0.0] * (k - len(recent))
        obs = {}
        for i, agent in enumerate(AGENTS):
            my_turn = t % 2 == i
            # Entries alternate starting with the supplier, so the opponent's are every other
            # one, starting at index 1 - i (its rejections hold no price).
            opp = [x for x in offers[1 - i::2] if x is not None]
            momentum = (opp[-1] - opp[-2]) / p_max if len(opp) >= 2 else 0.0
            mean = self._belief_mean[i]
            fields = [
                self._values[i] / p_max,
                standing / p_max,
                float(has_offer),
                t / horizon,
                (horizon - t) / horizon,
                float(i),
                float(my_turn),
                mean / p_max,
                math.sqrt(self._belief_var[i]) / p_max,
                abs(standing - mean) / p_max if has_offer else 0.0,
                momentum,
                float(my_turn and has_offer),
                1.0,
                1.0,
            ]
            obs[agent] = np.array(fields + recent, dtype=np.float32)
        return obs

    def render(self) -> None:
        pass

    def close(self) -> None:
        pass


def time_dependent_action(obs: np.ndarray, max_price: float, max_rounds: int,
                          exponent: float) -> dict[str, Any]:
    """Faratin et al.'s time-dependent negotiator, in plain Python, for one agent's observation.

    With P = max_price, T = max_rounds, v the own valuation (obs[0] * P), t_next = obs[3] * T + 1
    the round this move is played in, tau = t_next / T (at most 1) and c = tau ** (1 / exponent),
    the target price is P - c (P - v) for the supplier (role obs[5] == 0) and c v for the retailer.
    ACCEPT if a standing offer exists (obs[2] == 1) and it is at least as good as the target
    (supplier: offer >= target, retailer: offer <= target), otherwise COUNTER at the target; never
    WALK_AWAY.
    ``exponent`` < 1 concedes late (Boulware), > 1 early (Conceder). Returns an action in the
    env's action format.
    """
    v = float(obs[0]) * max_price
    # t_next is an integer: round away the float32 error of obs[3]; tau <= 1 (as in
    # eqx_jax.negotiators) only matters on a terminal observation.
    t_next = round(float(obs[3]) * max_rounds) + 1
    tau = min(t_next / max_rounds, 1.0)
    c = tau ** (1.0 / exponent)
    supplier = obs[5] == 0
    target = max_price - c * (max_price - v) if supplier else c * v
    if obs[2] == 1:
        offer = float(obs[1]) * max_price
        if (offer >= target) if supplier else (offer <= target):
            return {"action_type": ACCEPT, "price": np.array([target], np.float32)}
    return {"action_type": COUNTER, "price": np.array([target], np.float32)}
