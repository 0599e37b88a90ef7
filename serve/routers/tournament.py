"""``POST /tournament``: two players head to head, for the dashboard (:mod:`serve.tournament`)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from serve.deps import API, CurrentUser, ServicesDep, error_responses, field_error, too_busy
from serve.engine import PolicyError
from serve.schemas import TournamentRequest
from serve.tournament import Busy, head_to_head

router = APIRouter(prefix=API, tags=["simulation"])


@router.post("/tournament", responses=error_responses(401, 404, 413, 422, 429))
async def tournament(body: TournamentRequest, svc: ServicesDep,
                     user: CurrentUser) -> dict[str, Any]:
    """Head to head: A as supplier against B as retailer, then B against A, ``num_episodes``
    each (``eqx_jax.simulate.play_batch`` on the pair's game, valuations drawn from its
    priors), with 95 % confidence intervals (deal rate: Wilson; means: normal). A pairing a
    trained policy cannot play (its roles) is ``skipped`` with the reason. At most
    ``EQX_MAX_CONCURRENT_TOURNAMENTS`` at once on the server and
    ``EQX_MAX_TOURNAMENTS_PER_USER`` per user (else 429 with Retry-After)."""
    for field, name in (("policy_a", body.policy_a), ("policy_b", body.policy_b)):
        try:  # an unknown name is a 404 naming its field (the role is checked per pairing)
            await to_thread.run_sync(svc.sims.resolve, name, "supplier")
        except PolicyError as e:
            return field_error(field, str(e), status=e.status)
    s = svc.settings
    try:
        async with svc.slots.ahold(user.user_id, s.max_concurrent_tournaments,
                                   s.max_tournaments_per_user):
            out = await to_thread.run_sync(head_to_head, svc.engine, svc.sims.resolve, body)
    except Busy as e:
        raise too_busy(str(e)) from None
    rows = out["pairings"]
    if all("skipped" in r for r in rows):
        return field_error("policy_b", "these players cannot face each other: "
                           + "; ".join(r["skipped"] for r in rows))
    return out
