"""The jitted, seed-batched entry points: :func:`make_train_chunked`, :func:`make_train`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from eqx_jax.checks import check_choice, check_number
from eqx_jax.negotiators import Policy
from eqx_jax.ppo import plan as loop
from eqx_jax.ppo.config import PPOConfig
from eqx_jax.ppo.sharding import SEED_AXIS, make_mesh, runner_shardings
from eqx_jax.ppo.state import RunnerState


def _check_num_updates(num_updates, max_updates: int) -> None:
    check_number("num_updates", num_updates, 1, max_updates, integer=True,
                 note="(config.num_updates)")


def make_train_chunked(config: PPOConfig, opponent_policy: Policy | None = None,
                       devices: Sequence[jax.Device] | int | None = None):
    """``(init, train_chunk)`` for training in jitted chunks of updates (progress reports).

    ``opponent_policy``: the fixed opponent ``(key, obs, env_params) -> action`` when
    ``config.opponent == "policy"`` (required then, rejected otherwise); see :mod:`eqx_jax.ppo`.

    ``devices``: see :func:`eqx_jax.ppo.sharding.make_mesh` (default: every visible device). One
    code path for one device or many: the same program is compiled for the mesh and XLA
    partitions it (GSPMD), so the result does not depend on the device count beyond
    floating-point rounding (the sums of the loss and the gradients are added up in another
    order).

    ``init(key) -> runner_state``: jitted; splits ``key`` into ``num_seeds`` keys and vmaps.
    ``train_chunk(runner_state, num_updates) -> (runner_state, metrics)``: ``num_updates``
    updates (1 <= num_updates <= ``config.num_updates``) in one jitted call; metrics leaves are
    ``(num_seeds, num_updates)``. The update count is a *traced* loop bound (``fori_loop``; the
    metrics go to a buffer of ``config.num_updates`` rows that is cut to ``num_updates``), so all
    chunk lengths share one compilation, and chunks run back to back give exactly the result of
    one :func:`make_train` call of the same total length (it is the same program). Learning-rate
    annealing follows the update counter in the runner state, so it is unaffected by chunking.
    """
    mesh = make_mesh(config, devices)
    plan = loop.make_plan(config, opponent_policy, mesh)
    init_one = functools.partial(loop.init_one, plan)
    # Jitted so that its trace is cached: eval_shape (metric buffers) and the loop body share it.
    update_one = jax.jit(functools.partial(loop.update_one, plan))
    max_updates = config.num_updates

    def init(key: jax.Array) -> RunnerState:
        return jax.vmap(init_one, spmd_axis_name=SEED_AXIS)(
            jax.random.split(key, config.num_seeds))

    def run_updates(runner: RunnerState, num_updates: jax.Array):
        def one_seed(r):
            shapes = jax.eval_shape(update_one, r, None)[1]
            buf = jax.tree.map(lambda x: jnp.zeros((max_updates,) + x.shape, x.dtype), shapes)

            def body(i, carry):
                r, buf = carry
                r, m = update_one(r, None)
                return r, jax.tree.map(lambda b, x: b.at[i].set(x), buf, m)

            return jax.lax.fori_loop(0, num_updates, body, (r, buf))

        return jax.vmap(one_seed, spmd_axis_name=SEED_AXIS)(runner)

    key_shape = jax.eval_shape(lambda: jax.random.key(0))
    state_sharding = runner_shardings(mesh, jax.eval_shape(init, key_shape))
    # The metrics are small: every device (and host) gets all of them.
    replicated = NamedSharding(mesh, P())
    init_jit = jax.jit(init, in_shardings=replicated, out_shardings=state_sharding)
    run_jit = jax.jit(run_updates, in_shardings=(state_sharding, replicated),
                      out_shardings=(state_sharding, replicated))

    def train_chunk(runner: RunnerState, num_updates: int):
        _check_num_updates(num_updates, max_updates)
        runner = jax.device_put(runner, state_sharding)  # e.g. restored from a checkpoint
        runner, metrics = run_jit(runner, jnp.int32(num_updates))
        return runner, jax.tree.map(lambda x: x[:, :num_updates], metrics)

    train_chunk.mesh = mesh
    return init_jit, train_chunk


def make_train(config: PPOConfig, opponent_policy: Policy | None = None,
               devices: Sequence[jax.Device] | int | None = None,
               ) -> Callable[[jax.Array], tuple[RunnerState, dict]]:
    """``train(key) -> (runner_state, metrics)``: the full run of ``config.num_updates`` updates.

    Every leaf has a leading ``(num_seeds,)`` axis; metrics are ``(num_seeds, num_updates)``.
    Built from the same jitted pieces as :func:`make_train_chunked` (init, then one chunk of
    every update: the update loop is a single jitted call). ``opponent_policy`` and ``devices``:
    see :func:`make_train_chunked`.
    """
    init, train_chunk = make_train_chunked(config, opponent_policy, devices)

    def train(key: jax.Array):
        return train_chunk(init(key), config.num_updates)

    return train


def seed_params(params: dict, index: int = 0) -> dict:
    """One run's parameters out of the seed-batched ``runner_state.params``."""
    return jax.tree.map(lambda x: x[index], params)


#: Where a best response starts (:func:`warm_start`): the trained network's own weights
#: (fine-tuned against the frozen others) or a fresh network.
BR_INITS: tuple[str, ...] = ("incumbent", "fresh")


def warm_start(runner: RunnerState, config: PPOConfig, params: dict,
               br_init: str) -> RunnerState:
    """A best-response run's runner (of :func:`eqx_jax.ppo.best_response_config` of
    ``config``: one network per role or seat) with each role's network set to the weights
    that play that role in ``params`` (one run of ``config``) where ``br_init ==
    "incumbent"`` and PPO plays the role; fresh networks elsewhere and with ``"fresh"``.
    Adam's state starts at zero either way, so only the weights change."""
    check_choice("br_init", br_init, BR_INITS)
    if br_init == "fresh":
        return runner
    new = dict(runner.params)
    for role in config.trained_roles:
        new[role] = jax.tree.map(
            lambda x, old: jnp.broadcast_to(x, old.shape).astype(old.dtype),
            params[config.network_for(role)], runner.params[role])
    return runner.replace(params=new)
