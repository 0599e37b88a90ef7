"""``GET /api/v1/meta``: what a client needs to offer valid choices (no auth: nothing in it is
private). The dashboard builds its policy pickers and its form checks from it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from eqx_jax.env import make_params, params_to_dict
from eqx_jax.negotiators import NEGOTIATORS
from serve.deps import API, ServicesDep
from serve.engine import FALLBACK_POLICIES
from serve.job_config import INTEGER_LIMITS, JOB_LIMITS
from serve.schemas import (
    FieldBounds,
    MetaResponse,
    SimulationStartRequest,
    TournamentRequest,
    field_bounds,
)

router = APIRouter(prefix=API, tags=["meta"])

SIMULATION_FIELDS = ("supplier_valuation", "retailer_valuation", "max_rounds", "move_delay_s",
                     "seed")
TOURNAMENT_FIELDS = ("num_episodes", "max_rounds", "seed")


def training_bounds(max_job_timesteps: int) -> dict[str, FieldBounds]:
    """The job table (:data:`serve.job_config.JOB_LIMITS`), ``total_timesteps`` capped by this
    server's job budget."""
    out = {name: FieldBounds(min=lo, max=hi, integer=name in INTEGER_LIMITS)
           for name, (lo, hi) in JOB_LIMITS.items()}
    tt = out["total_timesteps"]
    tt.max = min(tt.max if tt.max is not None else max_job_timesteps, max_job_timesteps)
    return out


def game_choices() -> dict[str, dict[str, Any]]:
    """Every game a session can play: its summary, negotiators, scenarios (name, agents,
    description) and default scenario; ``agents`` for a game without scenarios."""
    from eqx_jax.games.registry import GAMES
    from eqx_jax.games.scenario import list_scenarios, load_scenario
    from eqx_jax.negotiators import GAME_NEGOTIATORS

    scenarios = [load_scenario(n) for n in list_scenarios()]
    out: dict[str, dict[str, Any]] = {}
    for name, g in GAMES.items():
        entry: dict[str, Any] = {"summary": g.summary}
        if name == "price":
            entry["negotiators"] = list(NEGOTIATORS)
        else:
            entry["negotiators"] = list(GAME_NEGOTIATORS) + (
                [f"negmas_{k}" for k in ("boulware", "linear", "conceder")]
                if name in ("multi-issue", "group") else [])
        if g.scenario:
            group = name == "group"
            fit = [sc for sc in scenarios if (sc.num_parties >= 3) == group]
            entry["scenarios"] = [{"name": sc.name, "agents": list(sc.parties),
                                   "description": sc.description} for sc in fit]
            entry["default_scenario"] = "supply-chain-3p" if group else "integrative-4"
        else:
            entry["agents"] = ["supplier", "retailer"]
        out[name] = entry
    return out


@router.get("/meta", response_model=MetaResponse)
async def meta(svc: ServicesDep) -> MetaResponse:
    """The classic negotiators, the default game and the bounds of the request fields:
    ``simulation`` (``POST /simulation/start``), ``tournament`` (``POST /tournament``) and
    ``training`` (``training_config`` of ``POST /agent/train``: the job table, with
    ``total_timesteps`` capped by this server's ``max_job_timesteps``)."""
    return MetaResponse(
        negotiators=list(NEGOTIATORS),
        fallback_policies=dict(FALLBACK_POLICIES),
        game=params_to_dict(make_params()),
        games=game_choices(),
        limits={
            "simulation": {f: field_bounds(SimulationStartRequest, f) for f in SIMULATION_FIELDS},
            "tournament": {f: field_bounds(TournamentRequest, f) for f in TOURNAMENT_FIELDS},
            "training": training_bounds(svc.settings.max_job_timesteps),
        })
