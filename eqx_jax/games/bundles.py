"""Item bundles: OpenSpiel's ``bargaining`` game (Lewis et al. 2017, "Deal or no deal?") in JAX.

The rules are OpenSpiel's (``open_spiel/games/bargaining/bargaining.cc``), move for move, with
the same legal actions and returns (checked against ``pyspiel`` in
``tests/games/test_bundles.py``): a pool of items of 3 types; player 0 (here ``supplier``) and
player 1 (``retailer``) each value every item type (integers; each player's whole pool is worth
10 in OpenSpiel's instances). An instance (pool and both value vectors) is drawn uniformly from
the params' instance table at reset (OpenSpiel's first chance node) or fixed by
``BundlesParams.instance``. Turns alternate, player 0 first; a turn is an offer (the item counts
the *proposer keeps*, the other player would get the rest) or, from turn 2 on, ACCEPT
(OpenSpiel's *agree*) of the standing offer. A deal at turn ``k`` pays each player the value of
its share times ``discount ** max(0, k - 2)``. After an offer at turn ``k >= 2`` the game ends
with no deal with probability ``prob_end``; an offer at turn ``max_turns`` ends it with no deal.
No deal pays 0. WALK_AWAY is never legal (masked out); see :meth:`BundlesEnv.step_env`.

Gymnax style: :class:`BundlesEnv` holds only static settings (``num_history``,
``observe_other_values`` for complete information),
:class:`BundlesState` / :class:`BundlesParams` are ``flax.struct`` pytrees, every method is pure
and jit- / vmap-able over episodes and settings. Units: item counts, integer values, returns in
value points (0 to 10); ``turn`` counts turns (env steps) of the episode. Shapes are for one
episode. The exact equilibrium is in :mod:`eqx_jax.solvers.bundles`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from eqx_jax.checks import FieldError, check_bool, check_number
from eqx_jax.env import ACCEPT, AGENTS, COUNTER, WALK_AWAY, _fmix32, _is_integral
from eqx_jax.games.spec import AutoReset
from eqx_jax.solvers.bundles import (
    NUM_ITEM_TYPES,
    POOL_MAX_ITEMS,
    TOTAL_VALUE,
    all_offers,
    generate_instances,
    pareto_mask,
)

NUM_ITEMS = NUM_ITEM_TYPES  # 3 item types (OpenSpiel's book, hat, basketball)
#: OpenSpiel's default number of instances (its ``max_num_instances``).
DEFAULT_NUM_INSTANCES = 1000
#: Columns of a row of ``BundlesParams.table``: pool (3), player 0's values (3), player 1's (3).
TABLE_COLUMNS = 9
_VALUE_RADIX = TOTAL_VALUE + 1  # values packed in base 11: 11^6 < 2^21
_POOL_BITS = 3  # pool counts <= 7
#: Offers index the Pareto table as a + 8 b + 64 c (every count is <= 7).
_RADIX = POOL_MAX_ITEMS + 1
PARETO_COLUMNS = _RADIX**NUM_ITEMS
NO_OFFER = -1.0

#: Observation fields before the offer history, in order (see docs/games.md, "bundles").
BUNDLES_OBS_FIELDS: tuple[str, ...] = (
    "own_value_0", "own_value_1", "own_value_2",  # own value per item / 10
    "pool_0", "pool_1", "pool_2",  # item counts / 7
    "share_0", "share_1", "share_2",  # own items under the standing offer / 7, 0 without one
    "has_offer",
    "accept_value",  # own value of accepting the standing offer / 10 (undiscounted), 0 without
    "round",  # turns played / max_turns
    "time_remaining",  # (max_turns - turns played) / max_turns
    "role",  # 0 player 0 (supplier), 1 player 1 (retailer)
    "my_turn",
    "deal_factor",  # discount ** max(0, k - 2) of a deal at this turn k
    "prob_end",
    "mask_accept",  # my turn and a standing offer exists
    "mask_counter",  # always 1
    "mask_walk",  # always 0: OpenSpiel's game has no walk-away
)
BUNDLES_OBS_INDEX: dict[str, int] = {name: i for i, name in enumerate(BUNDLES_OBS_FIELDS)}
#: With ``observe_other_values`` (complete information), these follow BUNDLES_OBS_FIELDS: the
#: other player's value per item / 10.
OTHER_VALUE_FIELDS: tuple[str, ...] = ("other_value_0", "other_value_1", "other_value_2")
#: Every split (a, b, c) with item counts 0..7, (512, 3): the classic negotiators' candidates.
_SPLIT_GRID = np.stack(np.meshgrid(*[np.arange(8.0)] * 3, indexing="ij"), -1).reshape(-1, 3)


# ----------------------------------------------------------------------------------- instances
def parse_instances(text: str, max_num_instances: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(pools (N, 3) int64, values (N, 2, 3) int64) from OpenSpiel's instances-file format.

    One instance a line: ``<pool> <player 0 values> <player 1 values>``, three comma-separated
    integers each, e.g. ``1,2,3 8,1,0 4,0,2``; empty lines are skipped and at most
    ``max_num_instances`` are kept (OpenSpiel's parameter of that name). Checked: pool counts
    in [0, 7] with at most 7 items in all (so every split of the pool is an OpenSpiel offer),
    values in [0, 10]. ``ValueError`` names the line.
    """
    pools, values = [], []
    for number, raw in enumerate(str(text).split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(" ")
        try:
            nums = [[int(x) for x in part.split(",")] for part in parts]
        except ValueError:
            raise ValueError(f"instances line {number} must be 3 groups of 3 comma-separated "
                             f"integers, got {line!r}") from None
        if len(nums) != 3 or any(len(n) != NUM_ITEMS for n in nums):
            raise ValueError(f"instances line {number} must be '<pool> <values 0> <values 1>', "
                             f"3 comma-separated integers each, got {line!r}")
        try:
            for k, n in enumerate(nums[0]):
                check_number(f"pool[{k}]", n, 0, POOL_MAX_ITEMS, integer=True)
            check_number("pool total", sum(nums[0]), 0, POOL_MAX_ITEMS, integer=True)
            for p in (0, 1):
                for k, v in enumerate(nums[1 + p]):
                    check_number(f"values {p}[{k}]", v, 0, TOTAL_VALUE, integer=True)
        except FieldError as err:
            raise FieldError(f"instances line {number}: {err.field}", err.requirement,
                             err.value) from None
        pools.append(nums[0])
        values.append(nums[1:])
        if max_num_instances is not None and len(pools) >= max_num_instances:
            break
    if not pools:
        raise ValueError("instances must hold at least one instance line")
    return np.asarray(pools, dtype=np.int64), np.asarray(values, dtype=np.int64)


def format_instances(pools, values) -> str:
    """OpenSpiel's instances-file text of ``pools`` (N, 3) and ``values`` (N, 2, 3)."""
    def join(x):
        return ",".join(str(int(v)) for v in x)
    return "".join(f"{join(p)} {join(v[0])} {join(v[1])}\n" for p, v in
                   zip(np.asarray(pools), np.asarray(values), strict=True))


def pack_instances(rows) -> np.ndarray:
    """(N,) uint32 codes of instance rows (N, 9) ``pool, values0, values1``: the pool counts in
    bits 0-8 (3 bits each), then the 6 values as one base-11 number (21 bits)."""
    rows = np.asarray(rows, dtype=np.int64)
    code = rows[:, 0] | (rows[:, 1] << _POOL_BITS) | (rows[:, 2] << 2 * _POOL_BITS)
    digits = sum(rows[:, 3 + i] * _VALUE_RADIX**i for i in range(2 * NUM_ITEMS))
    return (code | (digits << 3 * _POOL_BITS)).astype(np.uint32)


def unpack_instance(code: jax.Array):
    """(pool, values0, values1), each a tuple of 3 () f32, from a :func:`pack_instances` code."""
    code = jnp.asarray(code, jnp.uint32)
    mask = jnp.uint32(2**_POOL_BITS - 1)
    pool = tuple(((code >> (_POOL_BITS * i)) & mask).astype(jnp.float32) for i in range(3))
    rest = code >> (3 * _POOL_BITS)
    vals = []
    for _ in range(2 * NUM_ITEMS):
        vals.append((rest % _VALUE_RADIX).astype(jnp.float32))
        rest = rest // _VALUE_RADIX
    return pool, tuple(vals[:3]), tuple(vals[3:])


def _pareto_row(pool, values) -> np.ndarray:
    """(512,) bool: Pareto optimality of player 0 getting (a, b, c), at a + 8 b + 64 c."""
    grid = np.stack(np.meshgrid(*[np.arange(_RADIX)] * NUM_ITEMS, indexing="ij"), -1)
    shares = grid.transpose(2, 1, 0, 3).reshape(-1, NUM_ITEMS)  # row a + 8 b + 64 c
    ok = np.all(shares <= np.asarray(pool), axis=1)
    out = np.zeros(len(shares), dtype=bool)
    out[ok] = pareto_mask(pool, values, shares[ok])
    return out


def _tables(pools: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(table (N, 9) int64, pareto (N, 512) bool) of the instances."""
    table = np.concatenate([pools, values.reshape(-1, 2 * NUM_ITEMS)], axis=1).astype(np.int64)
    pareto = np.stack([_pareto_row(p, v) for p, v in zip(pools, values, strict=True)])
    return table, pareto


@lru_cache(maxsize=1)
def _default_tables(num: int) -> tuple[np.ndarray, np.ndarray]:
    rows = generate_instances(num, seed=0)
    return _tables(rows[:, :3], rows[:, 3:].reshape(-1, 2, NUM_ITEMS))


# -------------------------------------------------------------------------------------- params
@struct.dataclass
class BundlesParams:
    """Settings of the bundles game (OpenSpiel's parameter names); every field a pytree leaf.

    ``table`` (N, 9) int32 rows ``pool(3), values0(3), values1(3)``; ``codes`` (N,) uint32 the
    same rows packed by :func:`pack_instances` (what a reset reads: one scalar gather per
    episode; gathering a table row made the scan-unrolled step ~5x slower on CPU); ``pareto``
    (N, 512) bool: whether player 0 getting (a, b, c) of instance n is Pareto optimal, at
    ``[n, a + 8 b + 64 c]``. ``instance`` -1 draws an instance uniformly at each reset (like
    OpenSpiel's chance node), ``k >= 0`` always plays instance ``k``. Build with
    :func:`make_bundles_params` (it validates and builds the tables).
    """

    max_turns: int = 10  # turns; an offer at turn max_turns ends the game with no deal
    discount: float = 1.0  # a deal at turn k is worth discount ** max(0, k - 2)
    prob_end: float = 0.0  # chance of the end after each offer from turn 2 on
    instance: int = -1
    table: jax.Array | None = None
    codes: jax.Array | None = None
    pareto: jax.Array | None = None

    @property
    def max_rounds(self) -> int:
        """The horizon under the name the trainer uses for every game (= ``max_turns``)."""
        return self.max_turns

    @property
    def num_instances(self) -> int:
        return int(np.shape(self.codes)[-1])


_SCALARS = ("max_turns", "discount", "prob_end", "instance")
_SOURCES = ("instances", "instances_file", "max_num_instances")


def make_bundles_params(**overrides: Any) -> BundlesParams:
    """Validated :class:`BundlesParams`; ``ValueError`` naming the field and its range.

    Settings: ``max_turns`` (integer in [1, 1000], default 10), ``discount`` ([0, 1], 1),
    ``prob_end`` ([0, 1], 0), ``instance`` (-1 random, or an index into the instances) and the
    instances: ``instances`` (text in OpenSpiel's instances-file format, or an (N, 9) integer
    array of rows ``pool, values0, values1``), or ``instances_file`` (a path to such a file),
    at most ``max_num_instances`` of them (default 1000). Without either: 1000 instances drawn
    (seed 0) from every instance OpenSpiel's generator can make, with its distribution.
    """
    unknown = set(overrides) - set(_SCALARS) - set(_SOURCES)
    if unknown:
        raise ValueError(f"unknown bundles setting(s) {sorted(unknown)}; allowed: "
                         f"{sorted(_SCALARS + _SOURCES)}")
    limit = overrides.get("max_num_instances", DEFAULT_NUM_INSTANCES)
    limit = int(limit) if _is_integral(limit) else limit
    check_number("max_num_instances", limit, 1, integer=True)
    table, pareto = _instance_tables(overrides, limit)
    d = {name: overrides.get(name, BundlesParams.__dataclass_fields__[name].default)
         for name in _SCALARS}
    for name in ("max_turns", "instance"):
        d[name] = int(d[name]) if _is_integral(d[name]) else d[name]
    check_number("max_turns", d["max_turns"], 1, 1000, integer=True)
    check_number("discount", d["discount"], 0.0, 1.0)
    check_number("prob_end", d["prob_end"], 0.0, 1.0)
    check_number("instance", d["instance"], -1, len(table) - 1, integer=True,
                 note="(-1 draws one at each reset)")
    return BundlesParams(max_turns=d["max_turns"], discount=float(d["discount"]),
                         prob_end=float(d["prob_end"]), instance=d["instance"],
                         table=jnp.asarray(table, jnp.int32),
                         codes=jnp.asarray(pack_instances(table), jnp.uint32),
                         pareto=jnp.asarray(pareto))


def _instance_tables(overrides: dict[str, Any], limit: int) -> tuple[np.ndarray, np.ndarray]:
    text, path = overrides.get("instances"), overrides.get("instances_file")
    if text is not None and path is not None:
        raise ValueError("give instances or instances_file, not both")
    if path is not None:
        if not os.path.isfile(str(path)):
            raise ValueError(f"instances_file must be an existing file, got {path!r}")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    if text is None:  # OpenSpiel keeps the first max_num_instances lines of its file
        table, pareto = _default_tables(DEFAULT_NUM_INSTANCES)
        return table[:limit], pareto[:limit]
    if not isinstance(text, str):
        rows = np.asarray(text)
        if rows.ndim != 2 or rows.shape[1] != 3 * NUM_ITEMS:
            raise ValueError(f"instances must be text or an (N, 9) array, got shape {rows.shape}")
        text = format_instances(rows[:, :3], rows[:, 3:].reshape(-1, 2, NUM_ITEMS))
    pools, values = parse_instances(text, limit)
    return _tables(pools, values)


def bundles_params_to_dict(p: BundlesParams) -> dict[str, Any]:
    """The settings as plain JSON-able data (``make_bundles_params(**d)`` rebuilds them); the
    instances as OpenSpiel's instances-file text."""
    table = np.asarray(p.table)
    return {"max_turns": int(p.max_turns), "discount": float(p.discount),
            "prob_end": float(p.prob_end), "instance": int(p.instance),
            "instances": format_instances(table[:, :3], table[:, 3:].reshape(-1, 2, NUM_ITEMS))}


# ------------------------------------------------------------------------- OpenSpiel actions
@lru_cache(maxsize=1)
def _offer_ids() -> np.ndarray:
    ids = np.full((_RADIX,) * NUM_ITEMS, -1, dtype=np.int64)
    for i, (a, b, c) in enumerate(all_offers()):
        ids[a, b, c] = i
    return ids


def round_offer(offer, pool) -> np.ndarray:
    """(3,) int64: the env's reading of an offer: each count rounded to the nearest integer
    (halves up), clipped to [0, pool_k]; NaN counts as 0."""
    x = np.nan_to_num(np.asarray(offer, dtype=np.float64), nan=0.0)
    return np.clip(np.floor(x + 0.5), 0, np.asarray(pool)).astype(np.int64)


def to_openspiel_action(action_type: int, offer, pool, has_offer: bool = True) -> int:
    """OpenSpiel's action id of the env action (``action_type``, ``offer`` (3,)) in a state
    with ``pool`` and (``has_offer``) a standing offer: ACCEPT -> agree (120); COUNTER, and
    the illegal moves the env plays as COUNTER (ACCEPT without a standing offer, WALK_AWAY),
    -> the id of the rounded, clipped offer."""
    a = int(np.clip(action_type, ACCEPT, WALK_AWAY))
    if a == ACCEPT and has_offer:
        return len(all_offers())
    q = round_offer(offer, pool)
    return int(_offer_ids()[q[0], q[1], q[2]])


def from_openspiel_action(action_id: int) -> tuple[int, np.ndarray]:
    """(action_type, offer (3,) float32) of OpenSpiel's action id (agree -> ACCEPT)."""
    offers = all_offers()
    if action_id == len(offers):
        return ACCEPT, np.zeros(NUM_ITEMS, dtype=np.float32)
    if not 0 <= action_id < len(offers):
        raise ValueError(f"action_id must be in [0, {len(offers)}], got {action_id}")
    return COUNTER, offers[action_id].astype(np.float32)


# --------------------------------------------------------------------------------------- state
@struct.dataclass
class BundlesState:
    """Per-episode state, all scalars (one contiguous (N,) array per field under vmap).

    instance: () i32, the row of the params' table being played. pool, values0, values1:
    tuples of 3 () f32, the instance (item counts; player 0's and player 1's value per item).
    best_welfare: () f32, its largest welfare. turn: () i32, turns played (= offers made).
    factor: () f32, what a deal at the next turn ``k = turn + 1`` is worth per value point,
    ``discount ** max(0, k - 2)``, kept as a running product as OpenSpiel does (no ``pow`` in
    the step).
    offers: tuple of H tuples of 3 () f32, the last H offers as *player 0's items* under each
    (player 1 would get the rest of the pool), most recent first (``offers[0]`` is the standing
    offer, made at turn ``turn`` by player ``(turn - 1) % 2``; offers alternate); NO_OFFER (-1)
    where none was made. (Player 0's side rather than the proposer's: the deal and the
    observations then need no parity logic.)
    seed: () u32, drawn at reset: the chance end after turn ``k``'s offer is decided by
    :meth:`BundlesEnv.end_draw`, a hash of (seed, k).
    """

    instance: jax.Array
    pool: tuple[jax.Array, ...]
    values0: tuple[jax.Array, ...]
    values1: tuple[jax.Array, ...]
    best_welfare: jax.Array
    turn: jax.Array
    factor: jax.Array
    offers: tuple[tuple[jax.Array, ...], ...]
    seed: jax.Array


def _f32(x) -> jax.Array:
    return jnp.asarray(x, jnp.float32)


def _unit(bits: jax.Array) -> jax.Array:
    """U[0, 1) float32 from the top 23 bits of a uint32."""
    mantissa = jnp.right_shift(bits, jnp.uint32(32 - 23)) | jnp.uint32(0x3F800000)
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - 1.0


def _dot(a, b) -> jax.Array:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


class BundlesEnv(AutoReset):
    """OpenSpiel's bargaining game over item bundles (see the module docstring, docs/games.md).

    Static options: ``num_history``, past offers in each observation; ``observe_other_values``
    (default False, OpenSpiel's game): complete information, each observation also holds the
    other player's values (:data:`OTHER_VALUE_FIELDS`), the game whose subgame-perfect
    equilibrium :func:`eqx_jax.solvers.bundles.solve_spe` computes. Observation per agent:
    float32 ``(obs_size,)``, the fields of :attr:`obs_fields` (:data:`BUNDLES_OBS_FIELDS`, then
    the other's values with the option), then ``3 * num_history`` history entries: the
    observer's own items under each past offer / 7, most recent first, 0 where fewer offers
    were made. Actions: ``{"action_type": () i32, "offer": (3,) f32}``, the offer being the item
    counts the mover keeps (OpenSpiel's offer).
    """

    agents: tuple[str, str] = AGENTS
    num_actions: int = 3
    offer_size: int = NUM_ITEMS
    mask_slice: slice = slice(BUNDLES_OBS_INDEX["mask_accept"], BUNDLES_OBS_INDEX["mask_walk"] + 1)
    info_keys: tuple[str, ...] = ("deal", "timeout", "chance_end", "round", "supplier_return",
                                  "retailer_return", "welfare", "efficiency", "pareto_optimal")
    deal_keys: tuple[str, ...] = ("welfare", "efficiency", "pareto_optimal")
    #: What eqx_jax.simulate.play_batch records per episode: the info keys, the instance and
    #: the deal's split (what eqx evaluate compares with each instance's SPE).
    record_keys: tuple[str, ...] = info_keys + ("instance",) + tuple(
        f"supplier_items_{k}" for k in range(NUM_ITEMS))
    #: Each issue is an item count 0..7 (eqx_jax.games.spec.offer_levels); the legal ones are
    #: those up to the episode's pool of that item type (:meth:`offer_value_mask`).
    offer_levels: tuple[int, ...] = (POOL_MAX_ITEMS + 1,) * NUM_ITEMS

    def __init__(self, num_history: int = 2, observe_other_values: bool = False):
        n = int(num_history) if _is_integral(num_history) else num_history
        check_number("num_history", n, 1, 64, integer=True)
        self.num_history = int(n)
        self.observe_other_values = check_bool("observe_other_values", observe_other_values)
        #: The named observation fields, in order (the offer history follows them).
        self.obs_fields: tuple[str, ...] = BUNDLES_OBS_FIELDS + (
            OTHER_VALUE_FIELDS if self.observe_other_values else ())

    @property
    def obs_size(self) -> int:
        return len(self.obs_fields) + NUM_ITEMS * self.num_history

    @staticmethod
    def default_params() -> BundlesParams:
        return make_bundles_params()

    # --------------------------------------------------------------------- protocol pieces
    @staticmethod
    def rounds_played(state) -> jax.Array:
        """() i32: rounds played in the episode (the game protocol)."""
        return state.turn

    @staticmethod
    def mover(state: BundlesState) -> jax.Array:
        """() i32: 0 (player 0, supplier) on odd turns 1, 3, ..., 1 (player 1) on even ones."""
        return (state.turn & 1).astype(jnp.int32)

    @staticmethod
    def make_action(action_type: jax.Array, offer: jax.Array) -> dict[str, jax.Array]:
        return {"action_type": jnp.asarray(action_type).astype(jnp.int32),
                "offer": jnp.asarray(offer).astype(jnp.float32)}

    # --------------------------------------------------- what a classic negotiator reads
    @staticmethod
    def negotiator_view(obs: jax.Array, params: BundlesParams) -> dict[str, jax.Array]:
        """Decode one agent's observation for the utility-space negotiators: ``t_next``,
        ``horizon`` (max_turns), ``has_offer``, ``standing_gain`` (own value of accepting the
        standing offer, undiscounted) and ``best_gain`` (own value of the whole pool), value
        points."""
        i = BUNDLES_OBS_INDEX
        horizon = jnp.asarray(params.max_rounds, jnp.float32)
        values = jnp.stack([obs[i[f"own_value_{k}"]] for k in range(NUM_ITEMS)]) * 10.0
        pool = jnp.round(jnp.stack([obs[i[f"pool_{k}"]] for k in range(NUM_ITEMS)]) * 7.0)
        return {"t_next": jnp.round(obs[i["round"]] * horizon) + 1.0, "horizon": horizon,
                "has_offer": obs[i["has_offer"]] > 0.5,
                "standing_gain": obs[i["accept_value"]] * 10.0,
                "best_gain": jnp.sum(values * pool)}

    @staticmethod
    def offer_for_gain(obs: jax.Array, params: BundlesParams, gain: jax.Array) -> jax.Array:
        """(3,) the items to keep: among the splits of the pool worth at least ``gain`` to
        this agent, the one leaving the opponent the most by its *estimated* values (unknown:
        every item worth the same, the pool worth 10), then the one worth most to this agent;
        the whole pool when none is worth ``gain``."""
        i = BUNDLES_OBS_INDEX
        values = jnp.stack([obs[i[f"own_value_{k}"]] for k in range(NUM_ITEMS)]) * 10.0
        pool = jnp.round(jnp.stack([obs[i[f"pool_{k}"]] for k in range(NUM_ITEMS)]) * 7.0)
        shares = jnp.asarray(_SPLIT_GRID)  # (512, 3): every (a, b, c) with counts 0..7
        valid = jnp.all(shares <= pool, axis=1)
        mine = shares @ values
        left = jnp.sum(pool - shares, axis=1)  # items the opponent gets
        score = jnp.where(valid & (mine >= gain - 1e-6), left * 64.0 + mine, -jnp.inf)
        pick = jnp.argmax(score)
        return jnp.where(jnp.isfinite(score[pick]), shares[pick], pool).astype(jnp.float32)

    @staticmethod
    def offer_bounds(params: BundlesParams) -> tuple[jax.Array, jax.Array]:
        """(zeros (3,), the largest pool count of each item type over the instances)."""
        high = jnp.max(params.table[..., :NUM_ITEMS], axis=-2).astype(jnp.float32)
        return jnp.zeros(NUM_ITEMS, jnp.float32), high

    @staticmethod
    def offer_value_mask(obs: jax.Array) -> jax.Array:
        """(..., 3, 8) bool: keeping k items of type j is a legal offer iff k <= pool_j, the
        pool read from the observation(s) ``(..., obs_size)`` (every other count is clipped to
        the pool by the env)."""
        pool = jnp.stack([obs[..., BUNDLES_OBS_INDEX[f"pool_{j}"]] for j in range(NUM_ITEMS)],
                         axis=-1)
        counts = jnp.arange(POOL_MAX_ITEMS + 1, dtype=jnp.float32)
        return counts <= jnp.round(pool * POOL_MAX_ITEMS)[..., None]

    @staticmethod
    def gain_scale(params: BundlesParams) -> float:
        """A large deal gain: a player's whole pool is worth 10 value points in OpenSpiel's
        instances (the trainer scales rewards by 10 / gain_scale: here 1)."""
        return float(TOTAL_VALUE)

    @staticmethod
    def explore_bounds(params: BundlesParams) -> tuple[jax.Array, jax.Array]:
        """The offer bounds: every split of every pool is a subgame worth visiting."""
        return BundlesEnv.offer_bounds(params)

    @staticmethod
    def end_draw(state: BundlesState) -> jax.Array:
        """() f32 in [0, 1): the draw deciding the chance end after an offer from ``state``
        (the game ends if it is below ``prob_end``): a hash of the episode's seed and the turn,
        so :meth:`step_env` is a function of the state (same state, same outcome)."""
        turn = state.turn.astype(jnp.uint32)
        return _unit(_fmix32(state.seed ^ _fmix32(turn * jnp.uint32(0x9E3779B9)
                                                  + jnp.uint32(0x632BE5AB))))

    # ------------------------------------------------------------------------------ reset
    def reset(self, key: chex.PRNGKey, params: BundlesParams
              ) -> tuple[dict[str, jax.Array], BundlesState]:
        """Start an episode: draw (or take the fixed) instance and the chance seed."""
        state = self._initial_state(key, params)
        return self.get_obs(state, params), state

    def _initial_state(self, key: chex.PRNGKey, params: BundlesParams) -> BundlesState:
        # Why not jax.random here: see eqx_jax.env._uniform2 (a reset is computed for every
        # episode at every step; the library call was a quarter of the price game's step).
        data = jax.random.key_data(key).reshape(-1)
        lo, hi = data[0].astype(jnp.uint32), data[1].astype(jnp.uint32)
        bits = _fmix32(lo ^ _fmix32(hi ^ jnp.uint32(0x9E3779B9)))
        seed = _fmix32(hi + _fmix32(lo + jnp.uint32(0x7F4A7C15)))
        n = params.codes.shape[-1]
        drawn = jnp.minimum((_unit(bits) * n).astype(jnp.int32), n - 1)
        index = jnp.where(params.instance >= 0, params.instance, drawn).astype(jnp.int32)
        pool, values0, values1 = unpack_instance(params.codes[index])
        none = (jnp.float32(NO_OFFER),) * NUM_ITEMS
        best = sum(p * jnp.maximum(a, b) for p, a, b in zip(pool, values0, values1, strict=True))
        return BundlesState(
            instance=index, pool=pool, values0=values0, values1=values1, best_welfare=best,
            turn=jnp.zeros((), jnp.int32), factor=jnp.ones((), jnp.float32),
            offers=(none,) * self.num_history, seed=seed)

    # ------------------------------------------------------------------------------- step
    @staticmethod
    def standing_offer(state: BundlesState) -> tuple[jax.Array, jax.Array]:
        """((3,) the standing offer as player 0's (the supplier's) items, () bool whether there
        is one; player 1 would get the rest of the pool)."""
        return jnp.stack(state.offers[0]), state.offers[0][0] >= 0

    @staticmethod
    def _mover_move(state: BundlesState, actions: dict[str, dict]):
        """(counter, illegal accept, illegal walk, offer (3 () f32)) of the mover's action."""
        by0 = (state.turn & 1) == 0
        a0, a1 = actions[AGENTS[0]], actions[AGENTS[1]]
        a_type = jnp.where(by0, a0["action_type"], a1["action_type"]).astype(jnp.int32)
        a_type = jnp.clip(a_type, ACCEPT, WALK_AWAY)
        raw = jnp.where(by0, _f32(a0["offer"]), _f32(a1["offer"]))
        illegal_accept = (a_type == ACCEPT) & (state.turn == 0)
        illegal_walk = a_type == WALK_AWAY
        offer = tuple(jnp.clip(jnp.floor(jnp.where(jnp.isnan(raw[k]), 0.0, raw[k]) + 0.5),
                               0.0, state.pool[k]) for k in range(NUM_ITEMS))
        return (a_type != ACCEPT) | illegal_accept, illegal_accept, illegal_walk, offer

    def step_env(self, state: BundlesState, actions: dict[str, dict], params: BundlesParams):
        """Apply the mover's action without auto-reset: ``(state, rewards, done, info)``.

        Rules beyond OpenSpiel's (which has no such moves): ACCEPT at turn 1 (no standing
        offer) and WALK_AWAY (never legal: the mask says so) are played as COUNTER with the
        submitted offer, and flagged in ``info["illegal_accept"]`` / ``info["illegal_walk"]``.
        ``info`` (scalars): ``done``, ``deal``, ``walk_away`` (always False), ``timeout`` (an
        offer at turn max_turns), ``chance_end``, the two flags, ``round`` (the turn just
        played, i32), ``instance``, ``supplier_return`` / ``retailer_return`` (the rewards),
        ``supplier_items_k`` (k = 0..2: player 0's items of the deal, 0 without one),
        ``welfare`` (the sum of both undiscounted values of the deal), ``efficiency``
        (welfare / the instance's largest welfare) and ``pareto_optimal`` (of the deal's split,
        with both true values), all 0 without a deal.
        """
        counter, illegal_accept, illegal_walk, offer = self._mover_move(state, actions)
        k = state.turn + 1
        mover0 = (state.turn & 1) == 0
        deal = ~counter
        timeout = counter & (k >= params.max_turns)
        chance_end = (counter & ~timeout & (k >= 2)
                      & (self.end_draw(state) < _f32(params.prob_end)))
        done = deal | timeout | chance_end
        pool, items0 = state.pool, state.offers[0]
        items1 = tuple(p - x for p, x in zip(pool, items0, strict=True))
        value0, value1 = _dot(state.values0, items0), _dot(state.values1, items1)
        r0 = jnp.where(deal, state.factor * value0, 0.0)
        r1 = jnp.where(deal, state.factor * value1, 0.0)
        offer0 = tuple(jnp.where(mover0, x, p - x) for x, p in zip(offer, pool, strict=True))
        offers = tuple(tuple(jnp.where(counter, x, y) for x, y in zip(new, old, strict=True))
                       for new, old in zip((offer0,) + state.offers[:-1], state.offers,
                                           strict=True))
        cell = (items0[0] + _RADIX * items0[1] + _RADIX * _RADIX * items0[2]).astype(jnp.int32)
        pareto = params.pareto.reshape(-1)[state.instance * PARETO_COLUMNS
                                           + jnp.clip(cell, 0, PARETO_COLUMNS - 1)]
        welfare = jnp.where(deal, value0 + value1, 0.0)
        info = {
            "done": done, "deal": deal, "walk_away": jnp.zeros_like(deal), "timeout": timeout,
            "chance_end": chance_end, "illegal_accept": illegal_accept,
            "illegal_walk": illegal_walk, "round": k, "instance": state.instance,
            "supplier_return": r0, "retailer_return": r1,
            **{f"supplier_items_{i}": jnp.where(deal, items0[i], 0.0) for i in range(NUM_ITEMS)},
            "welfare": welfare,
            "efficiency": welfare / jnp.maximum(state.best_welfare, 1e-9),
            "pareto_optimal": deal & pareto,
        }
        factor = jnp.where(k >= 2, state.factor * _f32(params.discount), state.factor)
        new_state = state.replace(turn=k, factor=factor, offers=offers)
        return new_state, {AGENTS[0]: r0, AGENTS[1]: r1}, done, info

    # ------------------------------------------------------------------------ observation
    def get_obs(self, state: BundlesState, params: BundlesParams) -> dict[str, jax.Array]:
        """Both agents' observations, each ``(obs_size,)`` float32 (see docs/games.md)."""
        inv_n, inv_v = 1.0 / POOL_MAX_ITEMS, 1.0 / TOTAL_VALUE
        horizon = _f32(params.max_turns)
        tf = state.turn.astype(jnp.float32)
        has = state.turn > 0
        hasf = has.astype(jnp.float32)
        turn0 = (state.turn & 1) == 0  # player 0 moves next
        pool = state.pool
        one, zero = jnp.ones_like(tf), jnp.zeros_like(tf)

        def shares(j: int, player: int) -> tuple[jax.Array, ...]:
            """Own items of ``player`` under offers[j], 0 where no such offer was made."""
            made = state.turn > j
            return tuple(jnp.where(made, x if player == 0 else p - x, 0.0)
                         for x, p in zip(state.offers[j], pool, strict=True))

        def agent_obs(player: int, values, my_turn):
            own = shares(0, player)
            hist = [x * inv_n for j in range(self.num_history) for x in shares(j, player)]
            if self.observe_other_values:  # complete information: the other's values first
                other = state.values1 if player == 0 else state.values0
                hist = [v * inv_v for v in other] + hist
            return jnp.stack([
                *(v * inv_v for v in values), *(p * inv_n for p in pool),
                *(x * inv_n for x in own), hasf, _dot(values, own) * inv_v, tf / horizon,
                (horizon - tf) / horizon, one * player, my_turn.astype(jnp.float32), state.factor,
                one * _f32(params.prob_end), (my_turn & has).astype(jnp.float32), one, zero,
                *hist])

        return {AGENTS[0]: agent_obs(0, state.values0, turn0),
                AGENTS[1]: agent_obs(1, state.values1, ~turn0)}


def action_mask(obs: jax.Array) -> jax.Array:
    """(..., 3) bool mask of legal action types, read from observation(s)."""
    return obs[..., BUNDLES_OBS_INDEX["mask_accept"]:BUNDLES_OBS_INDEX["mask_walk"] + 1] > 0.5
