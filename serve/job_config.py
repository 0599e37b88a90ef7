"""What a training job submitted through the API may ask for: :data:`JOB_LIMITS`, one table of
``field -> (min, max)`` (both inclusive), and the request model built from it,
:class:`TrainingConfig` (``training_config`` of ``POST /agent/train``).

The core's :class:`eqx_jax.ppo.PPOConfig` accepts any positive size (a library user may train
what their machine holds); a server that runs other people's jobs bounds every knob, so that no
request can ask for a 2^20-wide network, 50 million updates or a seed that overflows. The bounds
are checked before the job is stored; a value outside them is a 422 at
``["body", "training_config", <field>]`` whose message names the field and its range
(``num_envs must be an integer in [1, 8192], got 100000``), and the OpenAPI schema carries the
same bounds as ``minimum`` / ``maximum``. docs/server.md prints the table (a test checks that
they agree: :func:`limits_markdown`).

The founding design's keys are accepted beside the native ones: ``learning_rate`` is ``lr``, and
``num_iterations`` is the number of PPO updates, so ``total_timesteps = num_iterations x
num_envs x num_steps`` (env steps per seed; the defaults 2,048 x 8 make 1,000 iterations 16.4
million env steps).

Units: ``total_timesteps`` in env steps per seed, ``lr`` per Adam step, prices in currency units.
"""

# No ``from __future__ import annotations``: the field annotations below are calls that build
# the bounded types from the table, evaluated when the class is made.
import dataclasses
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from eqx_jax.checks import FieldError, check_number, format_bound
from eqx_jax.negotiators import NEGOTIATORS
from eqx_jax.ppo import PPOConfig

#: Every bounded value of a job submitted through the API: ``name -> (min, max)``, inclusive.
#: Integers where :data:`INTEGER_LIMITS` says so. ``env.*`` are the game settings
#: (``training_config.env``); ``hidden.*``, ``batch_size`` and ``num_updates`` are derived.
JOB_LIMITS: dict[str, tuple[float, float]] = {
    # optimisation
    "lr": (1e-6, 1.0),
    "learning_rate": (1e-6, 1.0),
    "max_grad_norm": (1e-3, 100.0),
    "gamma": (0.0, 1.0),
    "gae_lambda": (0.0, 1.0),
    "clip_eps": (1e-3, 1.0),
    "vf_coef": (0.0, 10.0),
    "ent_coef": (0.0, 1.0),
    "explore_starts": (0.0, 1.0),
    "reward_scale": (1e-6, 100.0),
    "update_epochs": (1, 32),
    "num_minibatches": (1, 1024),
    # data collection (sizes: the batch of one update is num_envs x num_steps samples)
    "num_envs": (1, 8192),
    "num_steps": (1, 256),
    "batch_size": (1, 262_144),
    "total_timesteps": (1, 1_000_000_000),
    "num_iterations": (1, 10_000),
    "num_updates": (1, 10_000),
    "num_seeds": (1, 8),
    "seed": (0, 2**31 - 1),
    # networks and observation
    "hidden.width": (1, 1024),
    "hidden.depth": (1, 4),
    "num_history": (1, 32),
    # the game (eqx_jax.env.make_params also checks low <= high <= max_price)
    "env.max_rounds": (1, 100),
    "env.max_price": (1.0, 1e6),
    "env.supplier_low": (0.0, 1e6),
    "env.supplier_high": (0.0, 1e6),
    "env.retailer_low": (0.0, 1e6),
    "env.retailer_high": (0.0, 1e6),
    "env.speed_bonus": (-1e6, 1e6),
    "env.bonus_fraction": (0.0, 1.0),
    "env.discount": (0.01, 1.0),
    "env.walk_payoff": (-1e6, 1e6),
    "env.timeout_payoff": (-1e6, 1e6),
    "env.belief_alpha": (0.0, 1.0),
    "env.belief_beta": (0.0, 1.0),
}
INTEGER_LIMITS = frozenset({
    "update_epochs", "num_minibatches", "num_envs", "num_steps", "batch_size",
    "total_timesteps", "num_iterations", "num_updates", "num_seeds", "seed", "hidden.width",
    "hidden.depth", "num_history", "env.max_rounds"})
#: What the table's derived rows mean (docs/server.md prints it).
DERIVED = {
    "batch_size": "num_envs × num_steps (samples per update)",
    "num_updates": "total_timesteps // batch_size (PPO updates)",
    "hidden.width": "each layer of hidden",
    "hidden.depth": "number of layers of hidden",
    "learning_rate": "the founding design's name of lr",
    "num_iterations": "the founding design's PPO updates: total_timesteps = num_iterations × "
                      "batch_size",
    "total_timesteps": "per seed; total_timesteps × num_seeds ≤ EQX_MAX_JOB_TIMESTEPS",
    "env.discount": "each of the pair (supplier, retailer)",
    "env.walk_payoff": "each of the pair (supplier, retailer)",
    "env.timeout_payoff": "each of the pair (supplier, retailer)",
}
#: The founding design's training_config keys -> PPOConfig's.
FOUNDING_KEYS = {"learning_rate": "lr", "num_iterations": "num_updates"}
_DEFAULTS = PPOConfig()


def _invalid(message: str) -> PydanticCustomError:
    # A custom error keeps the message as written (no "Value error, " prefix): clients show it
    # by the field it names.
    return PydanticCustomError("value_error", message)


def check_limit(name: str, value: Any, label: str | None = None) -> Any:
    """``value`` if it is within ``JOB_LIMITS[name]``, else the 422 error naming ``label``."""
    low, high = JOB_LIMITS[name]
    try:
        return check_number(label or name.split(".")[-1], value, low, high,
                            integer=name in INTEGER_LIMITS)
    except FieldError as e:
        raise _invalid(str(e)) from None


def _bounded(name: str, kind: type) -> Any:
    low, high = JOB_LIMITS[name]
    return Annotated[kind | None, Field(ge=low, le=high, description=DERIVED.get(
        name, f"{format_bound(low)}..{format_bound(high)}"))]


def _pair(name: str) -> Any:
    low, high = JOB_LIMITS[name]
    item = Annotated[float, Field(ge=low, le=high)]
    return tuple[item, item] | None


class GameSettings(BaseModel):
    """``training_config.env``: the game to train on (:func:`eqx_jax.env.make_params`)."""

    model_config = ConfigDict(extra="forbid")
    max_rounds: _bounded("env.max_rounds", int) = None
    max_price: _bounded("env.max_price", float) = None
    supplier_low: _bounded("env.supplier_low", float) = None
    supplier_high: _bounded("env.supplier_high", float) = None
    retailer_low: _bounded("env.retailer_low", float) = None
    retailer_high: _bounded("env.retailer_high", float) = None
    reward_model: Literal["seed", "discounted"] | None = None
    speed_bonus: _bounded("env.speed_bonus", float) = None
    bonus_fraction: _bounded("env.bonus_fraction", float) = None
    discount: _pair("env.discount") = None
    walk_payoff: _pair("env.walk_payoff") = None
    timeout_payoff: _pair("env.timeout_payoff") = None
    belief_alpha: _bounded("env.belief_alpha", float) = None
    belief_beta: _bounded("env.belief_beta", float) = None

    @field_validator("*", mode="before")
    @classmethod
    def _in_table(cls, v: Any, info: ValidationInfo) -> Any:
        name = f"env.{info.field_name}"
        if v is None or name not in JOB_LIMITS:
            return v
        if name in ("env.discount", "env.walk_payoff", "env.timeout_payoff"):
            if not isinstance(v, list | tuple) or len(v) != 2:
                raise _invalid(f"{info.field_name} must be a pair of numbers (supplier, "
                               f"retailer), got {v!r}")
            return [check_limit(name, x, f"{info.field_name}[{side}]")
                    for x, side in zip(v, ("supplier", "retailer"), strict=True)]
        return check_limit(name, v)


class TrainingConfig(BaseModel):
    """``training_config``: :class:`eqx_jax.ppo.PPOConfig` fields (every one optional, default
    PPOConfig's), bounded by :data:`JOB_LIMITS`, plus the founding design's ``learning_rate``
    (= ``lr``) and ``num_iterations`` (PPO updates). Unknown keys are a 422 naming them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"num_iterations": 1000, "learning_rate": 0.0003, "gamma": 0.99},
        {"total_timesteps": 200000, "num_envs": 256, "hidden": [64, 64]}]})

    lr: _bounded("lr", float) = None
    learning_rate: _bounded("learning_rate", float) = None
    anneal_lr: bool | None = None
    max_grad_norm: _bounded("max_grad_norm", float) = None
    gamma: _bounded("gamma", float) = None
    gae_lambda: _bounded("gae_lambda", float) = None
    clip_eps: _bounded("clip_eps", float) = None
    vf_coef: _bounded("vf_coef", float) = None
    ent_coef: _bounded("ent_coef", float) = None
    anneal_ent: bool | None = None
    update_epochs: _bounded("update_epochs", int) = None
    num_minibatches: _bounded("num_minibatches", int) = None
    num_envs: _bounded("num_envs", int) = None
    num_steps: _bounded("num_steps", int) = None
    total_timesteps: _bounded("total_timesteps", int) = None
    num_iterations: _bounded("num_iterations", int) = None
    reward_scale: _bounded("reward_scale", float) = None
    explore_starts: _bounded("explore_starts", float) = None
    hidden: list[Annotated[int, Field(ge=JOB_LIMITS["hidden.width"][0],
                                      le=JOB_LIMITS["hidden.width"][1])]] | None = Field(
        None, min_length=int(JOB_LIMITS["hidden.depth"][0]),
        max_length=int(JOB_LIMITS["hidden.depth"][1]), description="MLP widths, e.g. [64, 64]")
    price_head: Literal["tanh_normal", "beta"] | None = None
    # the price game has no discrete issue: either value trains it the same
    discrete_head: Literal["categorical", "rounded"] | None = None
    shared_network: bool | None = None
    opponent: Literal[("self", *NEGOTIATORS)] | None = Field(  # type: ignore[valid-type]
        None, description="self (self-play) or a classic negotiator")
    ppo_roles: Literal["both", "supplier", "retailer"] | None = None
    seed: _bounded("seed", int) = None
    num_seeds: _bounded("num_seeds", int) = None
    env: GameSettings | None = None
    num_history: _bounded("num_history", int) = None
    # The server's engine plays the single-price game, so its jobs train that game: the
    # PPOConfig keys are accepted (a saved config round-trips) with only its values.
    game: Literal["price"] | None = Field(
        None, description="the game to train: the live server plays the price game")
    scenario: None = Field(None, description="no scenario: the price game has none")
    env_options: None = Field(None, description="no env options: the price game has none")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                raise _invalid(f"unknown training_config key(s) {unknown}; allowed: "
                               f"{sorted(cls.model_fields)}")
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _in_table(cls, v: Any, info: ValidationInfo) -> Any:
        name = info.field_name
        if v is None:
            return v
        if name == "hidden":
            if not isinstance(v, list | tuple):
                raise _invalid(f"hidden must be a list of layer widths, got {v!r}")
            check_limit("hidden.depth", len(v), "hidden (number of layers)")
            return [check_limit("hidden.width", h, "hidden (layer width)") for h in v]
        return check_limit(name, v) if name in JOB_LIMITS else v

    @model_validator(mode="after")
    def _derived(self) -> Self:
        for founding, native in (("learning_rate", "lr"), ("num_iterations", "total_timesteps")):
            if getattr(self, founding) is not None and getattr(self, native) is not None:
                raise _invalid(f"give {native} or {founding}, not both")
        envs = self.num_envs or _DEFAULTS.num_envs
        steps = self.num_steps or _DEFAULTS.num_steps
        check_limit("batch_size", envs * steps, "batch_size (num_envs × num_steps)")
        if self.total_timesteps is not None:
            check_limit("num_updates", max(1, self.total_timesteps // (envs * steps)),
                        "num_updates (total_timesteps // (num_envs × num_steps))")
        return self

    def ppo_fields(self) -> dict[str, Any]:
        """The ``PPOConfig`` fields this config sets (founding keys mapped: ``learning_rate``
        -> ``lr``; ``num_iterations`` -> ``total_timesteps = num_iterations x num_envs x
        num_steps``)."""
        out = self.model_dump(exclude_none=True, exclude={"env", "learning_rate",
                                                          "num_iterations"})
        if self.learning_rate is not None:
            out["lr"] = self.learning_rate
        if self.num_iterations is not None:
            envs = self.num_envs or _DEFAULTS.num_envs
            steps = self.num_steps or _DEFAULTS.num_steps
            out["total_timesteps"] = self.num_iterations * envs * steps
        if self.env is not None:
            out["env"] = self.env.model_dump(exclude_none=True)
        return out


def limits_markdown() -> str:
    """:data:`JOB_LIMITS` as the Markdown table of docs/server.md."""
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    rows = ["| field | min | max | integer | note |", "|---|---|---|---|---|"]
    for name, (low, high) in JOB_LIMITS.items():
        note = DERIVED.get(name, "" if name in fields or name.startswith("env.") else "derived")
        rows.append(f"| `{name}` | {format_bound(low)} | {format_bound(high)} | "
                    f"{'yes' if name in INTEGER_LIMITS else ''} | {note} |")
    return "\n".join(rows)


#: The training algorithms a job may name (case-insensitive); the schema lists both spellings.
ALGORITHMS: tuple[str, ...] = ("ppo",)


def _algorithm(v: Any) -> Any:
    if isinstance(v, str) and v.lower() in ALGORITHMS:
        return v.lower()
    raise _invalid(f"algorithm {v!r} is not implemented; allowed: "
                   f"{', '.join(ALGORITHMS)} (case-insensitive)")


#: ``algorithm`` of a training request: ``ppo`` in any case, stored as ``ppo``.
Algorithm = Annotated[Literal["ppo", "PPO"], BeforeValidator(_algorithm)]
