"""Server pieces without a server: rate limits, the schema migration, the game engine."""

from __future__ import annotations

import pytest

pytest.importorskip("sqlalchemy")

from serve.ratelimit import RateLimiter, retry_after_header  # noqa: E402


@pytest.fixture
def clock(monkeypatch):
    """A settable clock for the limiter and the ``limits`` memory storage."""
    import limits.storage.memory

    import serve.ratelimit

    class Clock:
        t = 1000.0

        @classmethod
        def time(cls) -> float:
            return cls.t

    monkeypatch.setattr(limits.storage.memory, "time", Clock)
    monkeypatch.setattr(serve.ratelimit, "time", Clock)
    return Clock


def test_rate_limit_burst_refill_and_retry_after(clock):
    b = RateLimiter(rate_per_minute=60, burst=3)  # one request per second on average
    assert [b.take("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = b.take("u")
    assert wait == pytest.approx(1.0)
    assert retry_after_header(wait) == "1" and retry_after_header(0.2) == "1"
    clock.t += 1.001
    assert b.take("u") == 0.0  # room again after one refill interval
    assert b.take("other") == 0.0  # limits are per key


def test_rate_limit_keeps_the_long_run_rate(clock):
    b = RateLimiter(rate_per_minute=6, burst=5)  # the limits of test_server_limits.py
    assert [b.take(1) for _ in range(5)] == [0.0] * 5
    assert b.take(1) == pytest.approx(10.0)  # the burst is spent: one refill interval
    for _ in range(50):  # then at most 6 a minute however often it asks
        clock.t += 1.0
        b.take(1)
    clock.t += 0.5
    assert b.take(1) > 0
    clock.t += 10.0
    assert b.take(1) == 0.0


def test_migration_matches_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from serve.db import Base, Database

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate()
    db.migrate()  # idempotent
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    db.dispose()


def test_engine_plays_the_eqx_jax_env_and_caches_the_compile():
    import jax
    import numpy as np

    from eqx_jax.env import BargainingEnv, make_params
    from eqx_jax.negotiators import NEGOTIATORS
    from serve.engine import Engine, PolicySpec, play_move, session_key

    eng = Engine()
    sup, ret = PolicySpec("negotiator", "boulware"), PolicySpec("negotiator", "conceder")
    game = eng.game(sup, ret, 10)
    assert eng.stats.compiles == 1
    _, state = game.reset.one(np.int32(5), game.params, np.float32(5000), np.float32(8000))
    moves = []
    for t in range(10):
        state, move, _ = play_move(game, 5, state, t)
        moves.append(move)
        if move["done"]:
            break
    # Another max_rounds reuses the compiled step (game settings are traced arguments).
    eng.game(sup, ret, 6)
    assert eng.stats.compiles == 1

    # The same moves straight from BargainingEnv.step_env with the same keys.
    env, params = BargainingEnv(), make_params(max_rounds=10)

    @jax.jit
    def reference_step(s, key):
        obs = env.get_obs(s, params)
        k_s, k_r = jax.random.split(key)
        acts = {"supplier": NEGOTIATORS["boulware"](k_s, obs["supplier"], params),
                "retailer": NEGOTIATORS["conceder"](k_r, obs["retailer"], params)}
        return env.step_env(s, acts, params)

    _, s = env.reset(session_key(5, 0), params)
    s = s.replace(supplier_value=jax.numpy.float32(5000), retailer_value=jax.numpy.float32(8000))
    for t, mv in enumerate(moves):
        s, _, done, info = reference_step(s, session_key(5, t + 1))
        assert bool(done) == mv["done"]
        if mv["action"] == "COUNTER":
            assert float(s.history[0]) == pytest.approx(mv["price"])
        assert int(info["round"]) == mv["round"]


def test_a_policy_plays_only_the_roles_it_was_trained_for(tmp_path):
    import jax

    from eqx_jax.env import BargainingEnv
    from eqx_jax.ppo import PPOConfig, init_network
    from eqx_jax.train import export_policy
    from serve.engine import Engine, PolicyError, PolicySpec

    config = PPOConfig(hidden=(4,), opponent="linear", ppo_roles="supplier",
                       env={"max_price": 20000.0}, shared_network=False)
    obs = BargainingEnv(config.num_history).obs_size
    path = export_policy(config, {"supplier": init_network(jax.random.key(0), (4,), obs)},
                         tmp_path / "policy.eqx")
    eng = Engine()
    trained = PolicySpec("trained", "sup-only", str(path))
    params, _ = eng.game_params(trained, PolicySpec("negotiator", "linear"), 7)
    # The policy's training game, with the request's horizon.
    assert params.max_price == 20000.0 and params.max_rounds == 7
    with pytest.raises(PolicyError) as exc:
        eng.game_params(PolicySpec("negotiator", "linear"), trained, 7)
    assert exc.value.field == "retailer_policy"


def test_styles_match_the_phrasing_module():
    import typing

    from serve.phrasing import STYLES
    from serve.schemas import Style

    assert tuple(typing.get_args(Style)) == tuple(STYLES)


def test_rate_limit_storage_is_checked_at_start(monkeypatch):
    from pydantic import ValidationError

    from serve.settings import Settings

    assert Settings().rate_limit_storage == "memory://"
    monkeypatch.setenv("EQX_RATE_LIMIT_STORAGE", "nosuch://x")
    with pytest.raises(ValidationError, match="not a usable limits storage URI"):
        Settings()
