"""``GET /api/v1/meta``: what a client needs to offer valid choices (no auth: nothing in it is
private). The dashboard builds its policy pickers and its form checks from it."""

from __future__ import annotations

from fastapi import APIRouter

from eqx_jax.env import make_params, params_to_dict
from eqx_jax.negotiators import NEGOTIATORS
from serve.deps import API, ServicesDep
from serve.engine import FALLBACK_POLICIES
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


@router.get("/meta", response_model=MetaResponse)
async def meta(svc: ServicesDep) -> MetaResponse:
    """The classic negotiators, the default game and the bounds of the request fields:
    ``simulation`` (``POST /simulation/start``), ``tournament`` (``POST /tournament``) and
    ``training`` (``training_config`` of ``POST /agent/train``: this server's
    ``max_job_timesteps``)."""
    return MetaResponse(
        negotiators=list(NEGOTIATORS),
        fallback_policies=dict(FALLBACK_POLICIES),
        game=params_to_dict(make_params()),
        limits={
            "simulation": {f: field_bounds(SimulationStartRequest, f) for f in SIMULATION_FIELDS},
            "tournament": {f: field_bounds(TournamentRequest, f) for f in TOURNAMENT_FIELDS},
            "training": {"total_timesteps": FieldBounds(
                min=1, max=svc.settings.max_job_timesteps, integer=True)},
        })
