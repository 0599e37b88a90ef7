"""Devices and sharding: the ``(seed, env)`` mesh a run is split over, and where state lives."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from eqx_jax.checks import check_number
from eqx_jax.ppo.config import PPOConfig
from eqx_jax.ppo.state import RunnerState

#: Axes of the device mesh: independent seeds, and the parallel envs of one seed.
SEED_AXIS, ENV_AXIS = "seed", "env"


def make_mesh(config: PPOConfig, devices: Sequence[jax.Device] | int | None = None) -> Mesh:
    """The ``(seed, env)`` device mesh a training run is split over.

    ``devices``: the devices (default: all of ``jax.devices()``, every host's under
    ``jax.distributed``), or how many of the first ones to use. The seed axis gets
    ``gcd(num_seeds, D)`` devices (independent runs need no communication), the env axis the
    rest: each device then steps ``num_envs / D_env`` envs of its seeds, and the gradients of
    every minibatch are summed across the env axis (an all-reduce) before each Adam step.
    ``ValueError`` if ``num_envs`` does not split evenly.
    """
    if devices is None:
        devices = jax.devices()
    elif isinstance(devices, int) and not isinstance(devices, bool):
        available = jax.devices()
        check_number("devices", devices, 1, len(available),
                     note=f"(the visible {available[0].platform} devices)")
        devices = available[:devices]
    devices = list(devices)
    if not devices:
        raise ValueError("devices must not be empty")
    n_seed = math.gcd(config.num_seeds, len(devices))
    n_env = len(devices) // n_seed
    if config.num_envs % n_env:
        raise ValueError(
            f"num_envs ({config.num_envs}) must be a multiple of the {n_env} devices the envs "
            f"are split over ({len(devices)} devices, {n_seed} of them for the "
            f"{config.num_seeds} seeds); change num_envs or use fewer devices")
    return Mesh(np.array(devices, dtype=object).reshape(n_seed, n_env), (SEED_AXIS, ENV_AXIS))


def runner_shardings(mesh: Mesh, runner: RunnerState) -> RunnerState:
    """Where each leaf of a (seed-batched) runner state lives: the running episodes split over
    seeds and envs, the networks, optimiser states and keys over seeds only (replicated on the
    env axis: every device of a seed holds the same parameters)."""
    by_seed = NamedSharding(mesh, P(SEED_AXIS))
    by_env = NamedSharding(mesh, P(SEED_AXIS, ENV_AXIS))
    out = jax.tree.map(lambda _: by_seed, runner)
    return out.replace(env_state=jax.tree.map(lambda _: by_env, runner.env_state),
                       obs=jax.tree.map(lambda _: by_env, runner.obs), explore_round=by_env)


def pin_env_axis(mesh: Mesh | None, tree, axis: int):
    """Split every leaf's ``axis`` (envs or samples) over ``mesh``'s env axis; a no-op without a
    mesh or with a single device on that axis. Any pytree of arrays; shapes unchanged.

    Sharding propagation alone tends to gather the batch onto every device at the
    permutations of the update; pinning the rollout, the update batch and each minibatch
    keeps every device on its share of the samples, so only the gradient sums (and the
    shuffles) cross devices. Under the seed vmap the seed axis is added by
    ``spmd_axis_name``.
    """
    if mesh is None or mesh.shape[ENV_AXIS] == 1:
        return tree

    def pin(x):
        spec = [None] * x.ndim
        spec[axis] = ENV_AXIS
        return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(*spec)))

    return jax.tree.map(pin, tree)
