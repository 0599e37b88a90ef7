"""Ray RLlib PPO on the reference env: the founding design's stack, as a baseline for eqx_jax.

Both agents (supplier, retailer) learn by self-play with RLlib's PPO on its current API stack
(RLModule / Learner / EnvRunner, connectors v2), one RLModule per role (``policy_mapping_fn``:
agent id -> module of the same name), on the plain-Python PettingZoo env of
:mod:`baselines.reference_env` seen through RLlib's ``ParallelPettingZooEnv`` wrapper. Ray is
started locally for the run, sized for the machine, and always shut down::

    from baselines.rllib_ppo import run_rllib
    result = run_rllib(seconds=300)          # JSON-able dict, see run_rllib
    python -m baselines.rllib_ppo --seconds 300 --json out.json

The game, the reward and the actions are the reference env's, unchanged (its defaults are those
of ``eqx_jax.env.EnvParams``: T = 10, max_price 10,000, V_s ~ U[4000, 6000], V_r ~ U[7000, 9000],
reward model "seed"). Two thin layers sit between RLlib and the env:

* :class:`TurnBasedBargainingEnv`: the reference env applies only the mover's action, so, as in
  eqx_jax (which trains each agent on its own decisions only, see ``turn_based_gae``), only the
  mover gets an observation and acts at each step (RLlib's turn-based multi-agent convention);
  on the final step both agents get their final observation and reward. RLlib credits the rewards
  an agent receives while it waits to its previous action, and discounts once per own decision,
  like ``turn_based_gae``. Rewards are multiplied by ``reward_scale`` (default 10 / max_price, as
  ``PPOConfig.reward_scale_value``) for learning only; everything reported is in game units.
* :class:`MatchedPPOTorchRLModule` (``network="matched"``, the default): RLlib's default PPO
  module (separate actor and critic MLPs, (32,) tanh, like eqx_jax's ``ActorCritic``) plus the two
  things eqx_jax's network adds: the three role-relative input features of
  ``eqx_jax.ppo.role_features`` and the action mask (ACCEPT is illegal without a standing offer;
  the env would turn it into a counter-offer). ``network="default"`` is the plain RLlib module.

Action encoding: RLlib takes the env's ``Dict(action_type=Discrete(3), price=Box(0, max_price))``
as it is, so both stacks give the env the same actions. RLlib's default distribution for it is a
Categorical(3) x Gaussian product; its ``normalize_actions`` maps the Gaussian sample z to
``max_price * (clip(z, -1, 1) + 1) / 2``, where eqx_jax's tanh-normal head uses
``max_price * (tanh(z) + 1) / 2``.

Hyperparameters matched to ``eqx_jax.ppo.PPOConfig`` (all of them are in the result):
lr 3e-4, gamma 0.99, lambda 0.95, clip 0.2, entropy 0.01, gradient clip 0.5 (global norm, per
module), 2 epochs, hidden (32,) tanh, separate actor and critic, no KL penalty (RLlib's
``use_kl_loss`` off), value coefficient 0.25: eqx_jax's value loss is ``vf_coef * 0.5 * (V -
target)^2`` = 0.25 (V - target)^2, RLlib's is ``vf_loss_coeff * (V - target)^2``.
Train batch: eqx_jax's 2048 envs x 8 steps = 16,384 env steps per update would take RLlib
~20 s on the 2-core VM below; 4,096 env steps (RLlib's own default is 4,000) gives an update
every ~5 s.
``minibatch_size`` is half the train batch (2,048 rows). RLlib cuts minibatches per module, from
a module batch that holds the module's decisions plus one masked bootstrap row per episode chunk,
and goes on until every module has covered ``num_epochs`` epochs, so the number of Adam steps per
module and iteration follows the episode lengths: 6 at the start (episodes of ~1.8 steps;
measured), against 4 per network in eqx_jax (2 epochs x 2 minibatches). Each curve point's
``module_rows_trained`` / ``minibatch_size`` is that number.

Differences that cannot be matched, or that we chose not to imitate:

* no exploring starts (eqx_jax: 30 % of training episodes open with random counter-offers);
* constant lr and entropy coefficient (eqx_jax anneals both linearly to 0 over a run of known
  length; a wall-clock budget has no known length);
* eqx_jax's default plays both roles with one shared network (``shared_network=True``); here each
  role has its own module, so each role learns its own policy (eqx_jax's
  ``shared_network=False``);
* log-probability of the hybrid action: RLlib adds the price's log-density to every action,
  eqx_jax only to counter-offers (an accept/walk-away does not depend on the price);
* value clipping: eqx_jax clips the value change to +-0.2 (PPO2), RLlib clips the squared value
  error at ``vf_clip_param`` (10, rarely reached with scaled rewards); advantages are
  standardized per module batch in RLlib, per minibatch in eqx_jax;
* Adam epsilon 1e-8 (torch default) vs 1e-5; initialization: torch defaults vs eqx_jax's
  lecun-normal torso and near-zero output heads;
* deal rate: eqx_jax's training curves leave out the exploring-start episodes; here every episode
  that ended in the iteration counts.

Speed-relevant settings (measured on a 2-core VM with other jobs sharing the cores, load
average 1-4; env steps/s include learning, 4,096-step batches):

* ``episodes_to_numpy=False``: in Ray 2.60 ``MultiAgentEnvRunner._sample`` calls ``to_numpy()``
  on *every* episode finished so far in the sample call after every env step (the loop sits
  inside the ``while``), which is quadratic in the episodes per sample call; with this game's
  1-5 step episodes it held sampling to ~20 env steps/s (1 env per runner) instead of ~170.
* ``num_envs_per_env_runner=32``: the per-step overhead (connectors, one torch forward per step)
  is paid once per vector step: 1 env ~170, 8 ~450, 32 ~680, 128 ~670 env steps/s.
* ``num_env_runners=0`` (sample in the driver's local EnvRunner): PPO samples, then learns, so
  remote runners only pay off if parallel sampling beats moving episodes between processes, and
  on 2 cores they share the cores with the learner (and Ray runs workers at nice 15, so they lose
  to other jobs). 60-s runs, 32 envs per runner: 0 runners 585 and 652 env steps/s (setup 9-12
  s, peak RSS 1.3 GiB), 1 runner 507 (setup 20 s, 1.9 GiB), 2 runners x 16 envs 461 (setup 31 s,
  2.5 GiB).
* ``OMP_NUM_THREADS=1`` in the driver and in the workers (``runtime_env``): torch's thread pool
  otherwise fights Ray's processes for the 2 cores.

Measured (2026-11-25, defaults, seed 0, ``python -m baselines.rllib_ppo --seconds 900``): 889 env
steps/s including learning (801,298 env steps in 902 s, 195 iterations; setup 8.4 s); the deal
rate rose from 0.29 to 0.46 (100 s), fell to 0.18 (230 s; episodes stretched to ~4.6 rounds and
ended in late walk-aways), then rose: first > 0.9 after 508 s (451,935 env steps), > 0.9 in
every iteration from 525 s on, 0.965 at the end; peak RSS 1.3 GiB. With ``--seconds 300`` (805
env steps/s): 0.27 at the end, never > 0.9.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Mapping
from typing import Any

# torch sizes its thread pool from OMP_NUM_THREADS when it is first imported: set it before the
# imports below (this module is only imported lazily, for this baseline).
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402

from baselines.memory import PeakRSSMonitor  # noqa: E402
from baselines.reference_env import AGENTS, OBS_FIELDS, ReferenceBargainingEnv  # noqa: E402

try:  # RLlib is an optional dependency: pip install -e ".[rllib]"
    import gymnasium as gym
    import ray
    import torch
    from ray.rllib.algorithms.ppo import PPOConfig as RLlibPPOConfig
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )
    from ray.rllib.callbacks.callbacks import RLlibCallback
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.env.multi_agent_env import MultiAgentEnv
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
except ImportError as _err:  # the classes below are then placeholders; run_rllib raises
    _IMPORT_ERROR: ImportError | None = _err
    MultiAgentEnv = RLlibCallback = DefaultPPOTorchRLModule = object  # type: ignore[misc]
else:
    _IMPORT_ERROR = None

#: The run's sampling decisions and the numbers behind them (see the module docstring).
DECISIONS = {
    "num_env_runners": (
        "0: sample in the driver's local EnvRunner. Measured (60-s runs, 4,096-step batches, "
        "2-core VM shared with other jobs): 0 runners x 32 envs 585-652 env steps/s incl. "
        "learning, 1 runner x 32 envs 507, 2 runners x 16 envs 461; remote runners also cost "
        "setup time (20-31 s vs 9-12 s) and memory (1.9-2.5 GiB vs 1.3 GiB)."),
    "num_envs_per_env_runner": (
        "32: per-step overhead is paid per vector step; 1 env ~170, 8 ~450, 32 ~680, 128 ~670 "
        "env steps/s."),
    "episodes_to_numpy": (
        "False: Ray 2.60's MultiAgentEnvRunner re-numpyizes every finished episode after every "
        "env step (quadratic); with True, ~20 env steps/s (1 env, 4,000-step batches)."),
}

OBS = {name: i for i, name in enumerate(OBS_FIELDS)}
#: Scale of the role-relative features (eqx_jax.ppo.FEATURE_SCALE).
FEATURE_SCALE = 10.0
#: Logit given to illegal action types (eqx_jax.ppo.MASKED_LOGIT).
MASKED_LOGIT = -1e9
NUM_ACTION_TYPES = 3

#: Default settings; every key can be overridden through run_rllib(**overrides).
DEFAULTS: dict[str, Any] = {
    # PPO, matched to eqx_jax.ppo.PPOConfig (see the module docstring)
    "lr": 3e-4,
    "gamma": 0.99,
    "lambda_": 0.95,
    "clip_param": 0.2,
    "vf_loss_coeff": 0.25,  # = PPOConfig.vf_coef 0.5 x the 0.5 in eqx_jax's value loss
    "vf_clip_param": 10.0,  # RLlib default (clips the squared error; eqx_jax clips differently)
    "entropy_coeff": 0.01,
    "grad_clip": 0.5,  # global norm, per module
    "num_epochs": 2,
    "train_batch_size": 4096,  # env steps per update (eqx_jax: 16,384)
    "minibatch_size": None,  # rows per module per minibatch; None: half the train batch
    "hidden": (32,),
    "network": "matched",  # "matched" (role features + action mask) or "default"
    # sampling
    "num_env_runners": 0,
    "num_envs_per_env_runner": 32,
    "episodes_to_numpy": False,  # see the module docstring (quadratic to_numpy in Ray 2.60)
    # the game: keyword arguments of ReferenceBargainingEnv (its defaults otherwise)
    "env": {},
    "reward_scale": None,  # None: 10 / max_price, as eqx_jax
}
#: Overrides applied by ``quick=True`` (CI smoke test): tiny batches, 2 iterations.
QUICK: dict[str, Any] = {
    "train_batch_size": 256,
    "num_envs_per_env_runner": 8,
}
QUICK_ITERATIONS = 2

RAY_INSTALL_HINT = 'pip install -e ".[rllib]"'


def _require_rllib() -> None:
    if _IMPORT_ERROR is not None:
        raise ImportError(
            f"the RLlib baseline needs Ray RLlib and torch ({_IMPORT_ERROR}); install them with "
            f"{RAY_INSTALL_HINT}") from _IMPORT_ERROR


# ======================================================================================== env
class TurnBasedBargainingEnv(MultiAgentEnv):
    """RLlib view of :class:`ReferenceBargainingEnv` (through ``ParallelPettingZooEnv``).

    ``config``: the reference env's keyword arguments plus ``reward_scale`` (None: 10 /
    max_price). Only the mover observes and acts at each step (the reference env ignores the
    other agent's action); on the final step both agents get their final observation, reward and
    the episode's info. Rewards are the env's times ``reward_scale``; the infos of the final step
    also carry both agents' unscaled rewards as ``game_rewards`` {agent: reward units}.
    """

    def __init__(self, config: Mapping[str, Any] | None = None):
        super().__init__()
        game = dict(config or {})
        scale = game.pop("reward_scale", None)
        self.par_env = ParallelPettingZooEnv(ReferenceBargainingEnv(**game))
        self.max_price = float(self.par_env.par_env.max_price)
        self.reward_scale = float(10.0 / self.max_price if scale is None else scale)
        self.agents = self.possible_agents = list(AGENTS)
        self.observation_spaces = {a: self.par_env.observation_space[a] for a in AGENTS}
        self.action_spaces = {a: self.par_env.action_space[a] for a in AGENTS}
        self._mover = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, _ = self.par_env.reset(seed=seed, options=options)
        self._mover = 0  # the supplier opens
        return {AGENTS[0]: obs[AGENTS[0]]}, {}

    def step(self, action_dict: dict[str, Any]):
        mover = AGENTS[self._mover]
        obs, rewards, terminated, truncated, infos = self.par_env.step(
            {mover: action_dict[mover]})
        scaled = {a: float(rewards[a]) * self.reward_scale for a in AGENTS}
        if terminated["__all__"] or truncated["__all__"]:
            # Both rewards in every agent's info: an agent that never acted (the retailer after a
            # walk-away in round 1) has no steps in RLlib's episode, hence no info there.
            game_rewards = {a: float(rewards[a]) for a in AGENTS}
            for a in AGENTS:
                infos[a]["game_rewards"] = game_rewards
            return obs, scaled, terminated, truncated, infos
        self._mover = 1 - self._mover
        nxt = AGENTS[self._mover]
        # Rewards are 0 before the final step; RLlib adds the waiting agent's (0) reward to its
        # previous action.
        return {nxt: obs[nxt]}, scaled, {"__all__": False}, {"__all__": False}, {}


# ================================================================================ RLModule
def role_features(obs: torch.Tensor) -> torch.Tensor:
    """eqx_jax.ppo.role_features in torch: ``(..., 3)`` role-relative features of ``obs``.

    With sign +1 for the supplier and -1 for the retailer: ``sign * (offer - own_value)`` (0
    without an offer), ``sign * (belief_mean - own_value)``, ``sign * (offer - belief_mean)``
    (0 without an offer), times :data:`FEATURE_SCALE` (observations are fractions of max_price).
    """
    sign = 1.0 - 2.0 * obs[..., OBS["role"]]
    own, has = obs[..., OBS["own_value"]], obs[..., OBS["has_offer"]]
    offer, belief = obs[..., OBS["standing_offer"]], obs[..., OBS["belief_mean"]]
    feats = torch.stack([has * sign * (offer - own), sign * (belief - own),
                         has * sign * (offer - belief)], dim=-1)
    return FEATURE_SCALE * feats


class MatchedPPOTorchRLModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO module with eqx_jax's role features and action-type mask.

    The encoders (actor and critic, separate unless ``vf_share_layers``) read the observation
    plus :func:`role_features`; the logits of illegal action types (the ``mask_*`` fields of the
    observation) are set to :data:`MASKED_LOGIT`, so they are never sampled and get no gradient.
    The action distribution inputs are ``[3 action-type logits, price mean, price log-std]``
    (RLlib flattens the Dict action space in key order).
    """

    def __init__(self, *args: Any, observation_space: gym.Space | None = None, **kwargs: Any):
        self.env_observation_space = observation_space
        if observation_space is not None:
            low = np.concatenate([observation_space.low, np.full(3, -np.inf, np.float32)])
            high = np.concatenate([observation_space.high, np.full(3, np.inf, np.float32)])
            observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        super().__init__(*args, observation_space=observation_space, **kwargs)

    def setup(self) -> None:
        super().setup()
        # The networks are built for obs + features; the module still takes the env's obs.
        self.observation_space = self.env_observation_space

    def _with_features(self, batch: dict[str, Any]) -> dict[str, Any]:
        obs = batch[Columns.OBS]
        if obs.shape[-1] != self.env_observation_space.shape[0]:
            return batch  # already augmented
        out = dict(batch)
        out[Columns.OBS] = torch.cat([obs, role_features(obs)], dim=-1)
        return out

    @staticmethod
    def _masked(out: dict[str, Any], obs: torch.Tensor) -> dict[str, Any]:
        inputs = out[Columns.ACTION_DIST_INPUTS]
        mask = torch.stack([obs[..., OBS["mask_accept"]], obs[..., OBS["mask_counter"]],
                            obs[..., OBS["mask_walk"]]], dim=-1) > 0.5
        logits = torch.where(mask, inputs[..., :NUM_ACTION_TYPES],
                             torch.full_like(inputs[..., :NUM_ACTION_TYPES], MASKED_LOGIT))
        out[Columns.ACTION_DIST_INPUTS] = torch.cat(
            [logits, inputs[..., NUM_ACTION_TYPES:]], dim=-1)
        return out

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        out = super()._forward(self._with_features(batch), **kwargs)
        return self._masked(out, batch[Columns.OBS])

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        out = super()._forward_train(self._with_features(batch), **kwargs)
        return self._masked(out, batch[Columns.OBS])

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None):
        if embeddings is None:
            batch = self._with_features(batch)
        return super().compute_values(batch, embeddings)


# =============================================================================== callbacks
#: Lifetime sums logged per finished episode; the driver differences them per iteration.
EPISODE_SUMS = ("episodes", "deals", "walk_aways", "timeouts", "rounds", "reward_supplier",
                "reward_retailer")
_METRIC_PREFIX = "eqx_"


class EpisodeOutcomeCallback(RLlibCallback):
    """Logs, once per finished episode, its outcome from the env's final info (lifetime sums)."""

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        infos = episode.get_infos(-1)  # {agent: info} at the episode's last env step
        info = next((i for i in infos.values() if i and "deal" in i), None)
        if info is None or metrics_logger is None:
            return
        values = {
            "episodes": 1.0,
            "deals": float(info["deal"]),
            "walk_aways": float(info["walk_away"]),
            "timeouts": float(info["timeout"]),
            "rounds": float(info["round"]),
            **{f"reward_{a}": float(info["game_rewards"][a]) for a in AGENTS},
        }
        for key, value in values.items():
            metrics_logger.log_value(_METRIC_PREFIX + key, value, reduce="lifetime_sum")


# ============================================================================== the run
def resolve_settings(quick: bool = False, **overrides: Any) -> dict[str, Any]:
    """DEFAULTS, then QUICK if ``quick``, then ``overrides``; ``ValueError`` on unknown keys."""
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    settings = {**DEFAULTS, **(QUICK if quick else {}), **overrides}
    settings["hidden"] = tuple(int(h) for h in settings["hidden"])
    if settings["minibatch_size"] is None:
        settings["minibatch_size"] = max(1, int(settings["train_batch_size"]) // 2)
    settings["env"] = dict(settings["env"])
    if settings["network"] not in ("matched", "default"):
        raise ValueError(f"network must be 'matched' or 'default', got {settings['network']!r}")
    for key in ("train_batch_size", "minibatch_size", "num_epochs", "num_envs_per_env_runner"):
        if int(settings[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {settings[key]!r}")
    if int(settings["num_env_runners"]) < 0:
        raise ValueError(f"num_env_runners must be >= 0, got {settings['num_env_runners']!r}")
    ReferenceBargainingEnv(**settings["env"])  # validates the game settings
    return settings


def build_config(settings: Mapping[str, Any], seed: int = 0) -> RLlibPPOConfig:
    """The RLlib ``PPOConfig`` for ``settings`` (see :func:`resolve_settings`)."""
    _require_rllib()
    env_config = {**settings["env"], "reward_scale": settings["reward_scale"]}
    module_class = (MatchedPPOTorchRLModule if settings["network"] == "matched"
                    else DefaultPPOTorchRLModule)
    model_config = DefaultModelConfig(
        fcnet_hiddens=list(settings["hidden"]), fcnet_activation="tanh",
        vf_share_layers=False,  # separate actor and critic, as eqx_jax's ActorCritic
        head_fcnet_hiddens=[])
    return (
        RLlibPPOConfig()
        .environment(TurnBasedBargainingEnv, env_config=env_config)
        .framework("torch")
        .env_runners(
            num_env_runners=int(settings["num_env_runners"]),
            num_envs_per_env_runner=int(settings["num_envs_per_env_runner"]),
            episodes_to_numpy=bool(settings["episodes_to_numpy"]),
        )
        .learners(num_learners=0)  # learn in the driver: no GPU, and no process to feed
        .multi_agent(
            policies=set(AGENTS),
            policy_mapping_fn=_policy_mapping_fn,
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(rl_module_specs={
                a: RLModuleSpec(module_class=module_class) for a in AGENTS}),
            model_config=model_config,
        )
        .training(
            train_batch_size_per_learner=int(settings["train_batch_size"]),
            minibatch_size=int(settings["minibatch_size"]),
            num_epochs=int(settings["num_epochs"]),
            lr=float(settings["lr"]),
            gamma=float(settings["gamma"]),
            lambda_=float(settings["lambda_"]),
            clip_param=float(settings["clip_param"]),
            vf_loss_coeff=float(settings["vf_loss_coeff"]),
            vf_clip_param=float(settings["vf_clip_param"]),
            entropy_coeff=float(settings["entropy_coeff"]),
            grad_clip=float(settings["grad_clip"]),
            grad_clip_by="global_norm",
            use_kl_loss=False,
        )
        .callbacks(EpisodeOutcomeCallback)
        .debugging(seed=int(seed))
    )


def _policy_mapping_fn(agent_id: str, episode: Any = None, **kwargs: Any) -> str:
    """Each agent is played by the module of the same name."""
    return agent_id


def _versions() -> dict[str, str]:
    import pettingzoo

    return {"ray": ray.__version__, "torch": torch.__version__,
            "gymnasium": gym.__version__, "pettingzoo": pettingzoo.__version__,
            "python": platform.python_version()}


def _lifetime(env_runner_results: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(env_runner_results.get(_METRIC_PREFIX + k, 0.0)) for k in EPISODE_SUMS}


def _check_run_args(seconds: float, target_deal_rate: float, max_iterations: int | None) -> None:
    """``ValueError`` unless ``seconds`` (wall time, s) is positive and finite,
    ``target_deal_rate`` is in [0, 1] and ``max_iterations`` is None or >= 1."""
    if not seconds > 0 or not math.isfinite(seconds):
        raise ValueError(f"seconds must be positive and finite, got {seconds!r}")
    if not 0.0 <= target_deal_rate <= 1.0:
        raise ValueError(f"target_deal_rate must be in [0, 1], got {target_deal_rate!r}")
    if max_iterations is not None and max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations!r}")


def _curve_point(result: Mapping[str, Any], iteration: int, t_s: float, env_steps: int,
                 now: Mapping[str, float], prev: Mapping[str, float]) -> dict[str, Any]:
    """One curve point from an ``algo.train()`` result.

    ``t_s``: training seconds so far; ``env_steps``: lifetime env steps sampled; ``now`` /
    ``prev``: the lifetime :data:`EPISODE_SUMS` after this and after the previous iteration, so
    the rates and means (rewards in game units) cover the episodes that ended in this iteration,
    None if none did.
    """
    d = {k: now[k] - prev[k] for k in EPISODE_SUMS}
    n = d["episodes"]
    return {
        "iteration": iteration,
        "t_s": round(t_s, 3),
        "env_steps": env_steps,
        "episodes": int(n),
        "deal_rate": d["deals"] / n if n else None,
        "walk_rate": d["walk_aways"] / n if n else None,
        "timeout_rate": d["timeouts"] / n if n else None,
        "mean_rounds": d["rounds"] / n if n else None,
        "mean_reward": {a: d[f"reward_{a}"] / n if n else None for a in AGENTS},
        # rows (decisions + masked bootstrap rows) x epochs that each module's
        # minibatches covered in this iteration's update
        "module_rows_trained": {
            a: int(result.get("learners", {}).get(a, {}).get(
                "num_module_steps_trained", 0)) for a in AGENTS},
    }


def _train_loop(algo: Any, seconds: float, max_iterations: int | None,
                progress: bool) -> tuple[list[dict[str, Any]], int, float]:
    """Run ``algo.train()`` until ``seconds`` of training wall time have passed (checked after
    each iteration) or ``max_iterations`` are done.

    Returns ``(curve, env_steps, train_seconds)``: one :func:`_curve_point` per iteration, the
    lifetime env steps sampled, and the training wall time in seconds.
    """
    curve: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    prev = dict.fromkeys(EPISODE_SUMS, 0.0)
    env_steps = 0
    while True:
        result = algo.train()
        t_s = time.perf_counter() - t_start
        runners = result["env_runners"]
        env_steps = int(runners.get("num_env_steps_sampled_lifetime", env_steps))
        now = _lifetime(runners)
        point = _curve_point(result, len(curve) + 1, t_s, env_steps, now, prev)
        prev = now
        curve.append(point)
        if progress:
            print(_progress_line(point), flush=True)
        if t_s >= seconds or (max_iterations is not None and len(curve) >= max_iterations):
            break
    return curve, env_steps, time.perf_counter() - t_start


def _run_on_local_ray(config: RLlibPPOConfig, seconds: float, max_iterations: int | None,
                      progress: bool) -> dict[str, Any]:
    """Start a local Ray, build ``config``'s algorithm, train (:func:`_train_loop`), and always
    stop the algorithm and shut Ray down.

    Returns ``curve``, ``env_steps``, ``train_seconds``, ``ray_init_s`` and ``setup_s``
    (ray.init + build), times in seconds.
    """
    t0 = time.perf_counter()
    algo = None
    try:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        ray_init_s = time.perf_counter() - t0
        algo = config.build_algo()
        setup_s = time.perf_counter() - t0
        curve, env_steps, train_seconds = _train_loop(algo, seconds, max_iterations, progress)
    finally:
        if algo is not None:
            algo.stop()
        ray.shutdown()
    return {"curve": curve, "env_steps": env_steps, "train_seconds": train_seconds,
            "ray_init_s": ray_init_s, "setup_s": setup_s}


def _first_above(curve: list[dict[str, Any]], target_deal_rate: float,
                 ) -> tuple[float | None, int | None]:
    """``(t_s, env_steps)`` of the first curve point whose deal rate exceeds
    ``target_deal_rate``; ``(None, None)`` if none does."""
    for point in curve:
        if point["deal_rate"] is not None and point["deal_rate"] > target_deal_rate:
            return point["t_s"], point["env_steps"]
    return None, None


def _hyperparameters(settings: Mapping[str, Any], reward_scale: float, seed: int, quick: bool,
                     game: ReferenceBargainingEnv) -> dict[str, Any]:
    """The result's ``hyperparameters``: ``settings`` (tuples as lists), the resolved
    ``reward_scale`` (per reward unit), the fixed RLlib choices, and the game's settings."""
    return {
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
        "reward_scale": reward_scale,
        "grad_clip_by": "global_norm",
        "use_kl_loss": False,
        "vf_share_layers": False,
        "activation": "tanh",
        "num_learners": 0,
        "seed": seed,
        "quick": quick,
        "game": _game_settings(game),
    }


def _action_encoding(network: str) -> str:
    """The result's ``action_encoding`` text for ``network`` ("matched" or "default")."""
    return (
        "the env's own Dict(action_type=Discrete(3) [0 ACCEPT, 1 COUNTER, 2 WALK_AWAY], "
        "price=Box(0, max_price, (1,))), unchanged: RLlib samples a Categorical(3) x "
        "Gaussian(1) product and maps the Gaussian sample z to max_price * (clip(z, -1, 1) "
        "+ 1) / 2 (normalize_actions); eqx_jax maps its tanh-normal sample z to "
        "max_price * (tanh(z) + 1) / 2. Only the mover acts; "
        + ("illegal action types are masked as in eqx_jax."
           if network == "matched" else "no action mask."))


def run_rllib(
    seconds: float = 300.0,
    *,
    target_deal_rate: float = 0.9,
    seed: int = 0,
    quick: bool = False,
    max_iterations: int | None = None,
    progress: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Train RLlib PPO self-play on the reference env for ``seconds`` of wall time.

    Iterations (sample ``train_batch_size`` env steps, then learn) run until ``seconds`` of
    training wall time have passed (checked after each iteration) or ``max_iterations`` are
    done; ``quick=True`` runs 2 tiny iterations (CI). ``overrides``: any key of
    :data:`DEFAULTS`, e.g. ``num_env_runners=1`` or ``env={"max_rounds": 6}``. ``progress``
    prints one line per iteration.

    Returns a JSON-able dict: ``rllib_env_steps_per_s`` (env steps sampled per second of
    training wall time, learning included, ray start and algorithm build excluded),
    ``env_steps``, ``train_seconds``, ``iterations``, ``setup_s`` (ray.init + build, seconds;
    also ``ray_init_s``, ``build_s``), ``time_to_quality_s`` / ``steps_to_quality`` (training
    seconds / env steps until the deal rate of the episodes that ended in an iteration first
    exceeds ``target_deal_rate``; None if never), ``final_deal_rate`` (last iteration),
    ``curve`` (per iteration: t_s, env_steps, episodes, deal_rate, walk_rate, timeout_rate,
    mean_rounds, mean_reward {supplier, retailer} in reward units, over the episodes that ended
    in the iteration, None if none did; module_rows_trained {module: rows}), ``peak_rss_mb``
    (peak of the summed RSS of the driver and all its descendants, MiB), ``versions``,
    ``hyperparameters``, ``action_encoding``, ``num_env_runners``, ``decisions``.
    """
    _require_rllib()
    _check_run_args(seconds, target_deal_rate, max_iterations)
    settings = resolve_settings(quick=quick, **overrides)
    if quick:
        max_iterations = min(max_iterations or QUICK_ITERATIONS, QUICK_ITERATIONS)
    if ray.is_initialized():
        raise RuntimeError("Ray is already initialized: run_rllib starts (and shuts down) its "
                           "own local Ray instance")
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    config = build_config(settings, seed=seed)
    game = ReferenceBargainingEnv(**settings["env"])
    reward_scale = (10.0 / game.max_price if settings["reward_scale"] is None
                    else float(settings["reward_scale"]))

    with PeakRSSMonitor() as memory:
        run = _run_on_local_ray(config, seconds, max_iterations, progress)

    curve, env_steps, train_seconds = run["curve"], run["env_steps"], run["train_seconds"]
    time_to_quality, steps_to_quality = _first_above(curve, target_deal_rate)
    final = next((p["deal_rate"] for p in reversed(curve) if p["deal_rate"] is not None), None)
    return {
        "stack": "ray.rllib PPO (new API stack: RLModule/Learner/EnvRunner), torch, CPU",
        "rllib_env_steps_per_s": env_steps / train_seconds,
        "env_steps": env_steps,
        "train_seconds": train_seconds,
        "iterations": len(curve),
        "setup_s": run["setup_s"],
        "ray_init_s": run["ray_init_s"],
        "build_s": run["setup_s"] - run["ray_init_s"],
        "target_deal_rate": target_deal_rate,
        "time_to_quality_s": time_to_quality,
        "steps_to_quality": steps_to_quality,
        "final_deal_rate": final,
        "curve": curve,
        "peak_rss_mb": memory.peak_mb,
        "versions": _versions(),
        "hyperparameters": _hyperparameters(settings, reward_scale, seed, quick, game),
        "action_encoding": _action_encoding(settings["network"]),
        "num_env_runners": int(settings["num_env_runners"]),
        "decisions": dict(DECISIONS),
    }


def _game_settings(game: ReferenceBargainingEnv) -> dict[str, Any]:
    keys = ("max_rounds", "max_price", "supplier_low", "supplier_high", "retailer_low",
            "retailer_high", "reward_model", "speed_bonus", "bonus_fraction", "discount",
            "walk_payoff", "timeout_payoff", "belief_alpha", "belief_beta", "num_history")
    return {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in ((k, getattr(game, k)) for k in keys)}


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def _progress_line(p: Mapping[str, Any]) -> str:
    r = p["mean_reward"]
    return (f"iter {p['iteration']:4d}  t {p['t_s']:7.1f} s  steps {p['env_steps']:8d}  "
            f"episodes {p['episodes']:6d}  deal {_fmt(p['deal_rate'])}  walk "
            f"{_fmt(p['walk_rate'])}  rounds {_fmt(p['mean_rounds'], '.2f')}  reward S "
            f"{_fmt(r['supplier'], '.0f')} R {_fmt(r['retailer'], '.0f')}")


def summary(result: Mapping[str, Any]) -> str:
    """A few lines for humans."""
    ttq = result["time_to_quality_s"]
    quality = (f"deal rate > {result['target_deal_rate']} after {ttq:.1f} s "
               f"({result['steps_to_quality']:,} env steps)" if ttq is not None
               else f"deal rate never > {result['target_deal_rate']}")
    return "\n".join([
        f"RLlib PPO (ray {result['versions']['ray']}, torch {result['versions']['torch']}), "
        f"{result['num_env_runners']} remote env runners",
        f"  {result['rllib_env_steps_per_s']:,.0f} env steps/s incl. learning: "
        f"{result['env_steps']:,} env steps in {result['train_seconds']:.1f} s, "
        f"{result['iterations']} iterations (setup {result['setup_s']:.1f} s)",
        f"  {quality}; final deal rate {_fmt(result['final_deal_rate'])}",
        f"  peak RSS (driver + Ray processes) {result['peak_rss_mb']:,.0f} MiB",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m baselines.rllib_ppo",
        description="Ray RLlib PPO self-play on the reference bargaining env (a baseline).")
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="training wall time budget (s), checked after each iteration")
    parser.add_argument("--quick", action="store_true", help="2 tiny iterations (smoke test)")
    parser.add_argument("--max-iterations", type=int, default=None)
    parser.add_argument("--target-deal-rate", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-env-runners", type=int, default=None,
                        help=f"remote env runners (default {DEFAULTS['num_env_runners']})")
    parser.add_argument("--num-envs-per-env-runner", type=int, default=None)
    parser.add_argument("--train-batch-size", type=int, default=None,
                        help="env steps per update (the minibatch is half of it)")
    parser.add_argument("--network", choices=("matched", "default"), default=None)
    parser.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    parser.add_argument("--quiet", action="store_true", help="no per-iteration lines")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    for key in ("num_env_runners", "num_envs_per_env_runner", "network"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.train_batch_size is not None:
        overrides["train_batch_size"] = args.train_batch_size
    result = run_rllib(args.seconds, target_deal_rate=args.target_deal_rate, seed=args.seed,
                       quick=args.quick, max_iterations=args.max_iterations,
                       progress=not args.quiet, **overrides)
    print(summary(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
