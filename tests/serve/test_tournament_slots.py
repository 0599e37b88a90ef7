"""The comparison slots shared in Redis (serve/tournament.py ``SharedSlots``), against a real
redis-server: a refused request never holds a slot, so a second user is not refused because a
first user's second request was being turned away at that moment."""

from __future__ import annotations

import asyncio

import pytest
from services import missing_services, start_redis

pytest.importorskip("redis")
if missing_services():
    pytest.skip(missing_services(), allow_module_level=True)

import redis.asyncio as aioredis  # noqa: E402

from serve.tournament import Busy, SharedSlots  # noqa: E402


def test_refused_requests_hold_no_slot(tmp_path):
    server = start_redis(tmp_path / "redis")

    async def run() -> list:
        r = aioredis.Redis(port=server.port)
        slots, seen = SharedSlots(r), []
        async with slots.ahold(1, 2, 1):
            with pytest.raises(Busy, match="EQX_MAX_TOURNAMENTS_PER_USER"):
                async with slots.ahold(1, 2, 1):
                    pass
            seen.append(await r.get("eqx:tournaments:total"))  # the refusal took nothing
            async with slots.ahold(2, 2, 1):  # the server's second slot is still free
                seen.append(await r.get("eqx:tournaments:total"))
                with pytest.raises(Busy, match="EQX_MAX_CONCURRENT_TOURNAMENTS"):
                    async with slots.ahold(3, 2, 1):
                        pass
        seen += [await r.get("eqx:tournaments:total"), await r.get("eqx:tournaments:user:1")]
        await r.aclose()
        return seen

    try:
        assert asyncio.run(run()) == [b"1", b"2", b"0", b"0"]
        assert asyncio.run(_crowd(server.port, SharedSlots)) == 0
    finally:
        server.stop()


async def _crowd(port: int, slots_class) -> int:
    """User 1 holds its one slot and sends 100 more requests at once (all refused) while user 2
    asks for the server's second slot 20 times, one after the other: how often user 2 is
    refused."""
    r = aioredis.Redis(port=port)
    slots, refused = slots_class(r), 0

    async def attempt(user: int) -> None:
        nonlocal refused
        try:
            async with slots.ahold(user, 2, 1):
                await asyncio.sleep(0)
        except Busy:
            refused += user == 2

    async def user_2() -> None:
        for _ in range(20):
            await attempt(2)

    async with slots.ahold(1, 2, 1):
        await asyncio.gather(*[attempt(1) for _ in range(100)], user_2())
    await r.aclose()
    return refused
