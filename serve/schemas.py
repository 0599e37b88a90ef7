"""Request and response models of the API (pydantic 2), with the bounds of every field.

Prices and valuations are currency units (the game's dollars), rewards reward units, delays
seconds, durations minutes where named so.
"""

from __future__ import annotations

import datetime as dt
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from eqx_jax.env import EnvParams
from serve.job_config import Algorithm, TrainingConfig

#: Valuations must be below the env's price cap (the default game's; a trained policy's game
#: with another cap is checked when the session starts).
MAX_PRICE = float(EnvParams().max_price)
#: Smallest accepted valuation (a cent): well inside float32's normal range, so a valuation
#: never becomes 0 (or a subnormal) when the engine casts it.
MIN_VALUATION = 0.01
Style = Literal["aggressive", "cooperative", "analytical"]
POLICY_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
#: A shipped scenario's name (configs/scenarios/<name>.yaml); never a path.
SCENARIO_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"
GameName = Literal["price", "price-quantity", "multi-issue", "bundles", "group"]
#: The longest session: rounds (steps in the group game).
MAX_SESSION_ROUNDS = 100
DEFAULT_PRICE_ROUNDS = 10
#: At most this many game settings in one request.
MAX_SETTINGS = 32
VALUATIONS = ("supplier_valuation", "retailer_valuation")
#: The request fields of the games beyond one price.
GAME_FIELDS = ("scenario", "settings", "policies", "styles")


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the token expires")


class PasswordChangeRequest(BaseModel):
    """``POST /auth/password``: revokes every token of the user, the caller's included."""

    model_config = ConfigDict(extra="forbid")
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256,
                              description="8 to 256 characters")


class SimulationStartRequest(BaseModel):
    """A negotiation to play: the price game between two policies (the founding design's
    request, unchanged), or any other game of ``eqx_jax.games.registry`` with ``game`` and its
    ``scenario`` / ``settings`` / ``agents`` and one policy per seat. Unknown fields are
    rejected; fields of another game than the one played name themselves in a 422."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"supplier_valuation": 5000, "retailer_valuation": 8000, "max_rounds": 10,
         "supplier_style": "aggressive", "retailer_style": "cooperative"},
        {"game": "price-quantity", "settings": {"cost_low": 50, "cost_high": 50},
         "supplier_policy": "boulware", "retailer_policy": "conceder"},
        {"game": "group", "scenario": "supply-chain-3p",
         "policies": ["boulware", "conceder", "linear"]}]})

    game: GameName = Field(
        "price", description="the game: price (default: one price, the founding design's "
                             "game), price-quantity, multi-issue, bundles or group (N parties)")
    # The engine computes in float32: a positive floor keeps a valuation from rounding to 0.
    supplier_valuation: float | None = Field(
        None, ge=MIN_VALUATION, lt=MAX_PRICE,
        description=f"price game (required there): the supplier's private valuation V_s, in "
                    f"[{MIN_VALUATION:g}, {MAX_PRICE:g})")
    retailer_valuation: float | None = Field(
        None, ge=MIN_VALUATION, lt=MAX_PRICE,
        description=f"price game (required there): the retailer's private valuation V_r, in "
                    f"[{MIN_VALUATION:g}, {MAX_PRICE:g})")
    max_rounds: int | None = Field(
        None, ge=1, le=MAX_SESSION_ROUNDS,
        description=f"at most this many rounds (steps in the group game), 1..{MAX_SESSION_ROUNDS};"
                    " default 10 in the price game, the game's or scenario's own elsewhere")
    scenario: str | None = Field(
        None, pattern=SCENARIO_PATTERN,
        description="multi-issue and group games: a shipped scenario by name (GET /meta lists "
                    "them); default: the game's own (integrative-4, supply-chain-3p)")
    agents: int | None = Field(None, ge=2, le=8,
                               description="group game: play the scenario's first N parties, "
                                           "2..8; default all of them")
    settings: dict[str, Any] | None = Field(
        None, max_length=MAX_SETTINGS,
        description="games beyond one price: game settings (docs/games.md; e.g. cost_low, "
                    "demand_slope, reward_model, discount), checked by the game, at most "
                    f"{MAX_SETTINGS} keys; private values are drawn from their priors with the "
                    "session's seed (a prior of zero width fixes one)")
    supplier_style: Style = Field("cooperative", description="phrasing style of the supplier")
    retailer_style: Style = Field("cooperative", description="phrasing style of the retailer")
    supplier_policy: str | None = Field(
        None, pattern=POLICY_PATTERN,
        description="a registered trained policy id or a classic negotiator name (random, "
                    "boulware, linear, conceder; in the price game also tit_for_tat, midpoint); "
                    "default: the trained policy 'default' if registered (price game), else "
                    "boulware")
    retailer_policy: str | None = Field(
        None, pattern=POLICY_PATTERN,
        description="as supplier_policy; default: 'default' if registered (price game), else "
                    "conceder")
    policies: list[Annotated[str, Field(pattern=POLICY_PATTERN)]] | None = Field(
        None, min_length=2, max_length=8,
        description="games beyond one price: one policy per seat, in seat order (the group "
                    "game's parties); instead of supplier_policy / retailer_policy. Default: "
                    "boulware for the first seat, conceder for the others")
    styles: list[Style] | None = Field(
        None, min_length=2, max_length=8,
        description="games beyond one price: one phrasing style per seat, in seat order; "
                    "default cooperative")
    move_delay_s: float = Field(0.0, ge=0.0, le=5.0,
                                description="seconds slept between moves, 0..5")
    seed: int | None = Field(None, ge=0, le=2**31 - 1,
                             description="PRNG seed of the session (same seed, same moves and "
                                         "private values); default random")
    deterministic: bool = Field(True, description="trained policies play greedily (true) or "
                                                  "sample their actions (false)")

    @model_validator(mode="wrap")
    @classmethod
    def _one_game(cls, data: Any, handler: Any) -> SimulationStartRequest:
        """The fields of the game played, and only those: the price game needs both
        valuations and takes none of the other games' fields (and the other way round)."""
        req = handler(data)
        errors = [InitErrorDetails(type="missing", loc=(f,), input=data) for f in VALUATIONS
                  if req.game == "price" and getattr(req, f) is None]
        foreign = GAME_FIELDS if req.game == "price" else VALUATIONS
        for f in foreign:
            if getattr(req, f) is not None:
                where = ("the games beyond one price" if req.game == "price"
                         else "the price game")
                errors.append(InitErrorDetails(
                    type=PydanticCustomError("value_error", "{field} is a field of {where}, "
                                             "not of the {game} game",
                                             {"field": f, "where": where, "game": req.game}),
                    loc=(f,), input=getattr(req, f)))
        if req.game != "group" and req.agents is not None:
            errors.append(InitErrorDetails(
                type=PydanticCustomError("value_error", "agents is a field of the group game"),
                loc=("agents",), input=req.agents))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        if req.game == "price" and req.max_rounds is None:
            req.max_rounds = DEFAULT_PRICE_ROUNDS
        return req


class SimulationStartResponse(BaseModel):
    session_id: str
    websocket_url: str
    status: Literal["created"] = "created"
    created_at: dt.datetime
    supplier_policy: str
    retailer_policy: str
    seed: int


SessionStatus = Literal["created", "running", "completed", "failed", "interrupted"]


class SimulationStatus(BaseModel):
    session_id: str
    status: SessionStatus
    current_round: int
    max_rounds: int
    moves: int = Field(description="moves streamed so far")
    deal_reached: bool | None
    final_price: float | None
    supplier_policy: str
    retailer_policy: str
    error: str | None = None
    created_at: dt.datetime
    started_at: dt.datetime | None
    updated_at: dt.datetime
    finished_at: dt.datetime | None


class SimulationTranscript(BaseModel):
    """Everything about a session: the request, the game played, every move, the result."""

    session_id: str
    status: SessionStatus
    request: dict[str, Any]
    game: dict[str, Any]
    seed: int
    messages: list[dict[str, Any]]
    result: dict[str, Any] | None
    error: str | None = None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class TrainRequest(BaseModel):
    """A training job: the founding design's keys or PPOConfig's (``serve.job_config``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"agent_type": "supplier", "algorithm": "PPO", "training_config": {
            "num_iterations": 1000, "learning_rate": 0.0003, "gamma": 0.99}},
        {"agent_type": "both", "algorithm": "ppo",
         "training_config": {"total_timesteps": 200000}}]})

    agent_type: Literal["supplier", "retailer", "both"] = Field(
        "both", description="both: self-play, one network per role; supplier / retailer: that "
                            "role learns against a fixed classic negotiator "
                            "(training_config.opponent, default linear)")
    algorithm: Algorithm = Field("ppo", description="training algorithm: ppo "
                                                    "(case-insensitive); others are a 422")
    training_config: TrainingConfig = Field(
        default_factory=TrainingConfig,
        description="eqx_jax.ppo.PPOConfig fields (e.g. total_timesteps, lr, num_envs, hidden, "
                    "env: game settings) or the founding design's num_iterations (PPO updates) "
                    "and learning_rate; every value bounded (docs/server.md, 'Training jobs')")


class TrainResponse(BaseModel):
    job_id: str
    status: Literal["queued"] = "queued"
    estimated_duration_minutes: float


class JobStatus(BaseModel):
    job_id: str
    status: Literal["queued", "running", "completed", "failed", "interrupted", "cancelled"]
    agent_type: str
    algorithm: str
    progress: float = Field(description="updates done / total updates, 0..1")
    updates_done: int
    total_updates: int
    estimated_duration_minutes: float
    last_metrics: dict[str, Any] | None
    policy_id: str | None
    error: str | None
    attempts: int = Field(0, description="trainer starts so far (a retry after a killed "
                                         "trainer resumes from the last checkpoint)")
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class PolicyInfo(BaseModel):
    agent_id: str
    agent_type: str
    algorithm: str
    roles: list[str]
    source: str
    trained_at: dt.datetime | None
    performance_metrics: dict[str, Any]
    game: dict[str, Any]
    config: dict[str, Any]
    job_id: str | None
    download_url: str


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=10_000, description="sessions to export (yours), 1..10,000")
    format: Literal["csv", "json", "jsonl"] = Field(
        "json", description="csv: one row per session; json: sessions with their results; "
                            "jsonl: the dataset, one line per move (a person's raw text, the "
                            "parsed move) with the session's outcome")


class ExportResponse(BaseModel):
    export_id: str
    download_url: str
    expires_at: dt.datetime
    format: Literal["csv", "json", "jsonl"]
    sessions: int


class TournamentRequest(BaseModel):
    """Two players (trained policy ids or classic negotiators), each pairing both ways."""

    model_config = ConfigDict(extra="forbid")
    policy_a: str = Field(pattern=POLICY_PATTERN)
    policy_b: str = Field(pattern=POLICY_PATTERN)
    num_episodes: int = Field(1000, ge=10, le=5000, description="episodes per pairing")
    max_rounds: int = Field(10, ge=1, le=100)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    deterministic: bool = Field(True, description="trained policies play greedily")


# ------------------------------------------------------------------ what the dashboard reads
class FieldBounds(BaseModel):
    """A numeric field's accepted range, as its model checks it."""

    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True
    integer: bool = False


class MetaResponse(BaseModel):
    """What a client needs to offer valid choices: the classic negotiators, the default game,
    and the bounds of the request fields (``limits[<request>][<field>]``)."""

    negotiators: list[str] = Field(description="classic negotiators, playable by name")
    fallback_policies: dict[str, str] = Field(
        description="the negotiator each role plays when no trained policy 'default' exists")
    game: dict[str, Any] = Field(description="the default game (eqx_jax.env.EnvParams)")
    games: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="every game a session can play: summary, negotiators, scenarios (name, "
                    "agents, description) and default_scenario, or agents; any seat may also "
                    "be 'human' (a person)")
    limits: dict[str, dict[str, FieldBounds]]


def _is_int(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return int in get_args(annotation)
    return annotation is int


def field_bounds(model: type[BaseModel], name: str) -> FieldBounds:
    """The bounds a model's numeric field is validated with (``Field(gt=..., le=...)``)."""
    info = model.model_fields[name]
    b = FieldBounds(integer=_is_int(info.annotation))
    for m in info.metadata:
        if isinstance(m, at.Gt):
            b.min, b.min_inclusive = float(m.gt), False
        elif isinstance(m, at.Ge):
            b.min = float(m.ge)
        elif isinstance(m, at.Lt):
            b.max, b.max_inclusive = float(m.lt), False
        elif isinstance(m, at.Le):
            b.max = float(m.le)
    return b
