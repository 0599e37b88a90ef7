"""The template phraser: deterministic sentences per style and action (``template_message``), the
fallback of every LLM backend and the whole of the ``template`` backend."""

from __future__ import annotations

import random

from serve.phrasing.prices import format_price
from serve.phrasing.types import MoveContext

__all__ = ["template_message"]

# {p}: the price ("$6,695"); {goods}: what changes hands; {r}/{t}: this round / max rounds.
# Each sentence names at most the move's price, so every template passes the guard, and is
# 11..49 words so it scores 1.0 on the quality length check (both are tested).
_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "aggressive": {
        "COUNTER": (
            "That is nowhere near good enough. My price is {p}, and I expect you to take it "
            "seriously this time.",
            "Let's stop wasting time. {p} is my offer for the {goods}, and I will not keep "
            "bending on it.",
            "I need {p} for the {goods}. Come back with something serious or this goes nowhere.",
            "My offer is firm at {p}. Take it now, because I am not in the mood for small steps.",
        ),
        "ACCEPT": (
            "Fine. {p} works for me, so we have a deal. Send the paperwork today.",
            "All right, I accept {p}. Let's close this now before anything changes.",
            "Deal at {p}. I expect delivery on the agreed terms, without surprises.",
        ),
        "WALK_AWAY": (
            "This is going nowhere, so I am walking away. {p} was never going to work for me.",
            "I am done here. At {p} there is no deal, and I will take my business elsewhere.",
            "Enough. I am walking away from {p}; my time is better spent on other partners.",
        ),
    },
    "cooperative": {
        "COUNTER": (
            "I appreciate your offer. Could we meet at {p} so that this works well for both "
            "of us?",
            "Let's find a win-win here. How about {p} for the {goods}, as a basis for a "
            "long-term partnership?",
            "Thank you for working with me on this. I would like to propose {p}, which I "
            "believe is fair to both sides.",
            "We are getting closer. Would {p} work for you? I think it balances both of our needs.",
        ),
        "ACCEPT": (
            "Thank you, {p} works for us. I accept, and I look forward to working together.",
            "Great, we have a deal at {p}. I appreciate your flexibility throughout these talks.",
            "I am happy to accept {p}. Thank you for a constructive negotiation, let's proceed.",
        ),
        "WALK_AWAY": (
            "Thank you for your time, but I am afraid {p} does not work for us, so I will step "
            "away for now.",
            "I appreciate the effort on both sides, but we have to walk away from {p}. I hope we "
            "can work together in the future.",
            "Unfortunately I have to end the negotiation here; {p} is not something we can "
            "make work. Thank you for your patience.",
        ),
    },
    "analytical": {
        "COUNTER": (
            "Based on our cost structure and current market data, I offer {p}, which represents "
            "fair value for the {goods}. I can share the full breakdown.",
            "At round {r} of {t}, the numbers support an offer of {p}. That figure reflects our "
            "costs and a reasonable margin.",
            "My analysis puts the fair price at {p}. It accounts for volume, delivery terms and "
            "current market conditions.",
            "Looking at the data, I propose {p} for the {goods}; it is consistent with "
            "comparable contracts this quarter.",
        ),
        "ACCEPT": (
            "The numbers check out: {p} is within our acceptable range. I accept, and we can "
            "proceed to contract.",
            "Having reviewed the terms, {p} is a sound outcome for both parties. We have a deal.",
            "{p} fits our analysis of fair value, so I accept. Let's finalize the details.",
        ),
        "WALK_AWAY": (
            "Our analysis shows that {p} does not cover our requirements, so I am walking away "
            "from this negotiation.",
            "The numbers do not support {p}, and further rounds are unlikely to close the gap. "
            "I am ending the negotiation here.",
            "After reviewing the data, {p} falls outside any viable range for us. We are "
            "withdrawing from the talks.",
        ),
    },
}
# WALK_AWAY with no standing offer: the same sentences without a price.
_WALK_NO_PRICE: dict[str, tuple[str, ...]] = {
    "aggressive": (
        "This is going nowhere, so I am walking away. Find someone else to waste time with.",
        "I am done here. There is no deal to be had, and I will take my business elsewhere.",
    ),
    "cooperative": (
        "Thank you for your time, but I do not see a way to make this work, so I will step "
        "away for now.",
        "I appreciate the effort, but we have to walk away this time. I hope we can work together "
        "in the future.",
    ),
    "analytical": (
        "Our analysis shows no price range that works for both sides, so I am walking away from "
        "this negotiation.",
        "The numbers do not support continuing, and further rounds are unlikely to close the gap. "
        "I am ending the negotiation here.",
    ),
}


def template_message(ctx: MoveContext) -> str:
    """A deterministic message for ``ctx``: the same (seed, round, role, style, action) always
    gives the same text; the variant is drawn from a PRNG seeded by (seed, round, role)."""
    ctx.validate()
    # A str seed is hashed with SHA-512 by random.Random: stable across processes and runs.
    rng = random.Random(f"{ctx.seed}:{ctx.round}:{ctx.role}")
    if ctx.action == "WALK_AWAY" and ctx.price is None:
        options = _WALK_NO_PRICE[ctx.style]
    else:
        options = _TEMPLATES[ctx.style][ctx.action]
    text = rng.choice(options)
    return text.format(
        p=format_price(ctx.price) if ctx.price is not None else "",
        goods="order" if ctx.role == "supplier" else "shipment",
        r=ctx.round,
        t=ctx.max_rounds,
    )
