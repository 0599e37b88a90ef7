"""What the training loop carries from one update to the next."""

from __future__ import annotations

import jax
from flax import struct

from eqx_jax.env import EnvState


@struct.dataclass
class RunnerState:
    """Everything the training loop carries (one run; a leading seed axis when batched).

    params / opt_state: dict network name (see ``PPOConfig.learners``) -> Flax params / Adam state.
    env_state, obs: the ``num_envs`` running episodes and both agents' current observations.
    explore_round: (num_envs,) i32, the running episode's rounds 1..explore_round are random
    counter-offers (exploring starts; 0: none).
    key: PRNG key. update: number of updates done so far (drives lr annealing).
    """

    params: dict
    opt_state: dict
    env_state: EnvState
    obs: dict
    explore_round: jax.Array
    key: jax.Array
    update: jax.Array
