"""The registry of games: ``--game NAME`` everywhere (train, evaluate, simulate, solve, bench).

``price`` is the single-price game of ``eqx_jax/env.py`` and the default. Each entry is a
:class:`~eqx_jax.games.spec.GameSpec`.
"""

from __future__ import annotations

from eqx_jax.env import BargainingEnv, make_params, params_to_dict
from eqx_jax.games.bundles import BundlesEnv, bundles_params_to_dict, make_bundles_params
from eqx_jax.games.group import GroupEnv, group_params_to_dict, make_group_params
from eqx_jax.games.multi_issue import (
    MultiIssueEnv,
    make_multi_issue_params,
    multi_issue_params_to_dict,
)
from eqx_jax.games.price_quantity import PriceQuantityEnv, make_pq_params, pq_params_to_dict
from eqx_jax.games.spec import GameSpec

DEFAULT_GAME = "price"

GAMES: dict[str, GameSpec] = {
    "price": GameSpec(
        name="price", summary="one price; private valuations (the founding game)",
        make_env=BargainingEnv, make_params=make_params, params_to_dict=params_to_dict),
    "price-quantity": GameSpec(
        name="price-quantity",
        summary="unit price x quantity; private unit cost and demand intercept",
        make_env=PriceQuantityEnv, make_params=make_pq_params,
        params_to_dict=pq_params_to_dict),
    "multi-issue": GameSpec(
        name="multi-issue",
        summary="2-8 issues, linear-additive utilities; private weights and reservation values "
                "(NegMAS style; --scenario)",
        make_env=MultiIssueEnv, make_params=make_multi_issue_params,
        params_to_dict=multi_issue_params_to_dict,
        env_options=("num_history", "scenario", "outcome_metrics"), scenario=True),
    "bundles": GameSpec(
        name="bundles",
        summary="a pool of items, private values (OpenSpiel's bargaining, Deal or No Deal)",
        make_env=BundlesEnv, make_params=make_bundles_params,
        params_to_dict=bundles_params_to_dict,
        env_options=("num_history", "observe_other_values")),
    "group": GameSpec(
        name="group",
        summary="2-8 parties at one table (NegMAS's stacked alternating offers) over a "
                "multi-issue scenario; private weights and reservation values (--scenario, "
                "--agents)",
        make_env=GroupEnv, make_params=make_group_params, params_to_dict=group_params_to_dict,
        env_options=("num_history", "scenario", "agents"), scenario=True),
}


def get_game(name: str) -> GameSpec:
    """The registry entry of ``name``; ``ValueError`` naming the allowed games."""
    if name not in GAMES:
        raise ValueError(f"game must be one of {sorted(GAMES)}, got {name!r}")
    return GAMES[name]
