"""EquilibriumX: agents learn to bargain, fast, and are checked against game theory."""

from eqx_jax.env import (
    ACCEPT,
    AGENTS,
    COUNTER,
    OBS_FIELDS,
    OBS_INDEX,
    WALK_AWAY,
    BargainingEnv,
    EnvParams,
    EnvState,
    make_params,
)

__all__ = [
    "ACCEPT", "AGENTS", "COUNTER", "OBS_FIELDS", "OBS_INDEX", "WALK_AWAY",
    "BargainingEnv", "EnvParams", "EnvState", "make_params",
]
__version__ = "0.1.0"
