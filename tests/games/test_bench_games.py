"""``eqx bench env --game NAME``: the benchmark runs and reports what the README quotes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("game", ["price-quantity"])
def test_bench_env_game_json(game):
    out = subprocess.run([sys.executable, "-m", "eqx_jax.cli", "bench", "env", "--game", game,
                          "--quick", "--sizes", "1024", "--json"],
                         capture_output=True, text=True, timeout=300, check=True)
    r = json.loads(out.stdout)
    assert r["game"] == game and set(r["jax_steps_per_s"]) == {"1024"}
    assert all(v > 0 for v in r["jax_steps_per_s"].values())
    assert r["adapter_steps_per_s"] > 0 and r["train_steps_per_s"] > 0
    assert r["peak_memory"]["num_envs"] == 1024 and r["peak_memory"]["xla_program_mb"] > 0


def test_bench_env_unknown_game_is_refused():
    out = subprocess.run([sys.executable, "-m", "eqx_jax.cli", "bench", "env", "--game", "chess"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--game" in out.stderr and "price-quantity" in out.stderr
