"""Every PPO knob (:class:`PPOConfig`, validated on construction) and who plays which side."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from eqx_jax.checks import FieldError, check_bool, check_choice, check_number
from eqx_jax.env import AGENTS
from eqx_jax.games.registry import DEFAULT_GAME, GAMES, get_game
from eqx_jax.games.spec import NegotiationEnv
from eqx_jax.negotiators import GAME_NEGOTIATORS, NEGOTIATORS

#: The N-party game: its agents are its scenario's parties, and PPO trains it in self-play.
GROUP_GAME = "group"

PRICE_HEADS: tuple[str, ...] = ("beta", "tanh_normal")
#: How the discrete issues of an offer (the env's offer_levels) are played: a masked
#: categorical over each issue's legal values, or a continuous sample the env rounds.
DISCRETE_HEADS: tuple[str, ...] = ("categorical", "rounded")
#: ``PPOConfig.opponent`` value for a fixed opponent given as a callable (``opponent_policy``).
POLICY_OPPONENT = "policy"
#: With several networks, each network's update batch holds at most this share of the
#: ``num_envs * num_steps`` samples of an update (its own decisions, packed; see
#: :func:`eqx_jax.ppo.plan.pack_batches`). In self-play each of the two networks makes about
#: half of the decisions (55-70 % for the supplier, who opens); the few decisions beyond the
#: share are left out of that update, a uniformly random subset, reported as
#: ``dropped_<network>``.
NETWORK_BATCH_SHARE = 0.75


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
    # counter-offers (not trained on), so that off-path rounds are learned (see
    # eqx_jax.ppo.plan.draw_explore)
    explore_starts: float = 0.3
    # networks
    hidden: tuple[int, ...] = (32,)  # MLP torso widths (tanh), actor and critic each
    price_head: str = "tanh_normal"  # "tanh_normal" or "beta"
    # discrete issues (multi-issue value indices, bundles item counts): "categorical" (a masked
    # categorical per issue) or "rounded" (the price_head's sample, rounded by the env); games
    # without discrete issues (price, price-quantity) are the same either way
    discrete_head: str = "rounded"
    shared_network: bool = True  # one network for both roles (the obs has a "role" field)
    # who plays: see the eqx_jax.ppo docstring
    opponent: str = "self"  # "self", a negotiator name or "policy" (fixed, untrained opponent)
    ppo_roles: str = "both"  # "both", "supplier", "retailer" (only with a negotiator opponent)
    # runs
    seed: int = 0  # for callers: jax.random.key(config.seed)
    num_seeds: int = 1  # independent runs trained at once (vmap)
    # the game (a name of eqx_jax.games.registry.GAMES) and its settings: overrides passed to
    # the game's make_params, e.g. {"max_rounds": 6}
    game: str = DEFAULT_GAME
    scenario: str | None = None  # the scenario of a game played on one (multi-issue): name/file
    env: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    num_history: int = 4  # offers in the observation (the env's num_history)
    # the env's other static options (GameSpec.env_options beyond num_history and scenario),
    # e.g. {"observe_other_values": True} for complete information in bundles; None: none
    env_options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list | tuple):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.env, Mapping):
            object.__setattr__(self, "env", dict(self.env))
        if isinstance(self.env_options, Mapping):
            object.__setattr__(self, "env_options", dict(self.env_options))
        self._take_scenario_option()
        self.validate()

    def _take_scenario_option(self) -> None:
        """A scenario game's scenario may be given in ``env_options`` (the env's own option
        name); it is moved to the ``scenario`` field so that params and env share it."""
        opts = self.env_options
        if not (isinstance(opts, dict) and "scenario" in opts and isinstance(self.game, str)
                and self.game in GAMES and get_game(self.game).scenario):
            return
        opts = dict(opts)
        scenario = opts.pop("scenario")
        if self.scenario is not None and self.scenario != scenario:
            raise ValueError(f"scenario is given twice: scenario={self.scenario!r} and "
                             f"env_options['scenario']={scenario!r}")
        object.__setattr__(self, "scenario", scenario)
        object.__setattr__(self, "env_options", opts or None)

    def __hash__(self) -> int:  # the env dict is not hashable; hash the plain-data form
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field and its allowed values."""
        check_number("lr", self.lr, 0.0, low_open=True)
        check_bool("anneal_lr", self.anneal_lr)
        check_bool("anneal_ent", self.anneal_ent)
        check_number("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_number("gamma", self.gamma, 0.0, 1.0)
        check_number("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_number("clip_eps", self.clip_eps, 0.0, low_open=True)
        check_number("vf_coef", self.vf_coef, 0.0)
        check_number("ent_coef", self.ent_coef, 0.0)
        check_number("explore_starts", self.explore_starts, 0.0, 1.0)
        for name in ("update_epochs", "num_minibatches", "num_envs", "num_steps", "num_seeds",
                     "num_history"):
            check_number(name, getattr(self, name), 1, integer=True)
        check_number("total_timesteps", self.total_timesteps, 1, integer=True)
        check_number("seed", self.seed, 0, integer=True)
        if self.total_timesteps < self.batch_size:
            raise FieldError("total_timesteps",
                             f">= num_envs * num_steps (= {self.batch_size})",
                             self.total_timesteps)
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches must divide num_envs * num_steps (= {self.batch_size}), "
                f"got {self.num_minibatches}")
        if self.reward_scale is not None:
            check_number("reward_scale", self.reward_scale, 0.0, low_open=True)
        if (not isinstance(self.hidden, tuple) or not self.hidden
                or not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1
                           for h in self.hidden)):
            raise ValueError(
                f"hidden must be a non-empty tuple of integers >= 1, got {self.hidden!r}")
        check_choice("price_head", self.price_head, PRICE_HEADS)
        check_choice("discrete_head", self.discrete_head, DISCRETE_HEADS)
        check_bool("shared_network", self.shared_network)
        self._validate_players()
        check_choice("game", self.game, tuple(GAMES))
        if self.scenario is not None and not get_game(self.game).scenario:
            raise ValueError(f"scenario is a setting of the games played on a scenario "
                             f"({[n for n, g in GAMES.items() if g.scenario]}); the "
                             f"{self.game!r} game has none")
        if not isinstance(self.env, dict):
            raise ValueError(f"env must be a dict of game settings, got {self.env!r}")
        self.env_params  # noqa: B018 - raises ValueError naming the game setting
        self._validate_env_options()

    def _validate_env_options(self) -> None:
        if self.env_options is None:
            return
        allowed = tuple(o for o in get_game(self.game).env_options
                        if o not in ("num_history", "scenario"))
        if not isinstance(self.env_options, dict) or set(self.env_options) - set(allowed):
            raise ValueError(f"env_options must be a dict with keys among {list(allowed)} "
                             f"(the {self.game!r} env's static options), got "
                             f"{self.env_options!r}")
        self.make_env()  # raises ValueError naming a bad option value

    def _validate_players(self) -> None:
        if self.game == GROUP_GAME and self.opponent not in ("self", POLICY_OPPONENT):
            # N-party training is self-play, or best responses to frozen policies at the table.
            raise ValueError(f"opponent must be 'self' or '{POLICY_OPPONENT}' in the "
                             f"{GROUP_GAME!r} game, got {self.opponent!r}")
        if self.game != DEFAULT_GAME and self.opponent not in (
                "self", POLICY_OPPONENT, *GAME_NEGOTIATORS):
            raise ValueError(f"opponent must be 'self', '{POLICY_OPPONENT}' or one of "
                             f"{list(GAME_NEGOTIATORS)} in the {self.game!r} game, got "
                             f"{self.opponent!r}")
        if self.opponent not in ("self", POLICY_OPPONENT) and self.opponent not in NEGOTIATORS:
            raise ValueError(f"opponent must be 'self' or one of {list(NEGOTIATORS)}, or "
                             f"'{POLICY_OPPONENT}' (with an opponent_policy passed to "
                             f"make_train), got {self.opponent!r}")
        seats = self.agents
        check_choice("ppo_roles", self.ppo_roles, ("both", *seats))
        if self.opponent == "self" and self.ppo_roles != "both":
            raise ValueError("ppo_roles must be 'both' when opponent is 'self' (PPO plays "
                             f"every role), got {self.ppo_roles!r}")
        if self.opponent != "self" and self.ppo_roles == "both" and self.num_envs % len(seats):
            need = "even" if len(seats) == 2 else f"a multiple of {len(seats)}"
            raise ValueError(f"num_envs must be {need} when ppo_roles is 'both' with a fixed "
                             f"opponent (an equal block of envs per role), got {self.num_envs}")

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
    def env_params(self) -> Any:
        """The game's validated params (``EnvParams`` for the price game; the group game's
        for the parties its ``env_options["agents"]`` seats)."""
        seats = {}
        if self.env_options and "agents" in self.env_options:
            seats = {"agents": self.env_options["agents"]}
        return get_game(self.game).params(self.scenario, **seats, **self.env)

    @property
    def agents(self) -> tuple[str, ...]:
        """The game's agents: the two roles, or the group game's parties (seat order)."""
        if self.game != GROUP_GAME:
            return AGENTS
        return tuple(self.make_env().agents)

    def make_env(self) -> NegotiationEnv:
        """The game's env with this config's ``num_history``, ``env_options`` (and scenario)."""
        return get_game(self.game).env(self.scenario, num_history=self.num_history,
                                       **(self.env_options or {}))

    @property
    def reward_scale_value(self) -> float:
        """Rewards are multiplied by this for learning: ``reward_scale``, else 10 / the game's
        gain scale (the price game's max_price), so that rewards are a few units."""
        if self.reward_scale is not None:
            return float(self.reward_scale)
        return 10.0 / float(self.make_env().gain_scale(self.env_params))

    @property
    def learners(self) -> dict[str, tuple[str, ...]]:
        """Network name -> the roles it plays. Only roles PPO plays have a network."""
        roles = self.agents if self.ppo_roles == "both" else (self.ppo_roles,)
        if self.shared_network:
            return {"shared": roles}
        return {r: (r,) for r in roles}

    @property
    def trained_roles(self) -> tuple[str, ...]:
        """The roles PPO plays (has a network for) in this config, in :attr:`agents` order."""
        return tuple(r for r in self.agents if any(r in v for v in self.learners.values()))

    def player(self, role: str) -> str:
        """Who plays ``role`` among this config's policies: ``"ppo"`` where it trains the role,
        else its fixed opponent (a negotiator's name or ``"policy"``)."""
        return "ppo" if role in self.trained_roles else self.opponent

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
        if self.ppo_roles == "both":  # equal blocks in seat order (two roles: the halves)
            seats = self.agents
            return np.arange(n) * len(seats) // n == seats.index(role)
        return np.full(n, self.ppo_roles == role)


def default_sides(config: PPOConfig) -> tuple[str, str]:
    """Who plays (supplier, retailer) in one match of a trained config: :meth:`PPOConfig.player`
    of each role, except that a config that trains both roles against a negotiator plays the PPO
    supplier against the negotiator (not PPO against itself, which it never trained for)."""
    supplier, retailer = (config.player(r) for r in AGENTS)
    if supplier == retailer == "ppo" and config.opponent != "self":
        retailer = config.opponent
    return supplier, retailer


def sides_for_agent_type(agent_type: str, fields: Mapping[str, Any],
                         default_opponent: str = "linear") -> dict[str, Any]:
    """PPOConfig fields for a training request that names the side to train: ``agent_type``
    ``"supplier"``/``"retailer"`` trains that role against a classic negotiator
    (``default_opponent`` unless ``fields`` names one), ``"both"`` trains both. ``ValueError`` if
    ``fields`` contradict it (``opponent="self"`` for one side, another ``ppo_roles``)."""
    out = dict(fields)
    if agent_type in AGENTS:
        if out.get("opponent", default_opponent) == "self":
            raise ValueError(f"opponent must be a classic negotiator when agent_type is "
                             f"{agent_type!r}")
        if out.get("ppo_roles", agent_type) != agent_type:
            raise ValueError(f"ppo_roles must equal agent_type ({agent_type!r}) or be left out")
        out.setdefault("opponent", default_opponent)
        out["ppo_roles"] = agent_type
    elif out.get("ppo_roles", "both") != "both":
        raise ValueError("ppo_roles must be 'both' (or left out) when agent_type is 'both'")
    return out


def best_response_config(config: PPOConfig, total_timesteps: int | None = None,
                         num_seeds: int = 1) -> PPOConfig:
    """The config that trains fresh best responses for *every* role in one run.

    ``opponent="policy"``, ``ppo_roles="both"``: the envs are split in A equal blocks (A roles:
    the two sides, or a group game's seats), in block i a fresh network plays role i against
    the fixed policy in the other roles (two sides: in the first half a fresh supplier against
    the fixed policy as retailer, in the second half the fixed supplier against a fresh
    retailer); separate networks, each trained only on its block. ``num_envs`` and
    ``total_timesteps`` are multiplied by A, so each best response gets exactly what ``config``
    gives one role: ``config.num_envs`` envs per update, the same number of updates and of env
    steps (``total_timesteps``, default ``config.total_timesteps``), the same minibatch size per
    network. Every other knob (network, optimiser, PPO, game) is the config's.
    """
    steps = config.total_timesteps if total_timesteps is None else total_timesteps
    a = len(config.agents)
    return dataclasses.replace(
        config, opponent=POLICY_OPPONENT, ppo_roles="both", shared_network=False,
        num_envs=a * config.num_envs, total_timesteps=a * steps, num_seeds=num_seeds)
