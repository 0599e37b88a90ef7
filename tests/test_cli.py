"""The eqx command: JSON output, readable output, and clear errors (exit 2, no traceback)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from eqx_jax.cli import main


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_solve_json_is_the_spe(capsys):
    d = run_json(capsys, "solve", "--supplier-value", "5000", "--retailer-value", "8000",
                 "--rounds", "10", "--json")
    assert d["outcome"] == "agreement" and d["round"] == 2
    assert d["price"] == pytest.approx(6695.3125)
    assert d["supplier_payoff"] == pytest.approx(1090.0)
    assert d["retailer_payoff"] == pytest.approx(840.0)
    d = run_json(capsys, "solve", "--supplier-value", "8000", "--retailer-value", "5000",
                 "--reward", "discounted", "--json")
    assert d["outcome"] == "no_agreement" and d["price"] is None


def test_simulate_json_and_text(capsys):
    d = run_json(capsys, "simulate", "--episodes", "300", "--supplier", "boulware",
                 "--retailer", "conceder", "--json")
    m = d["metrics"]
    assert d["supplier"] == "boulware" and m["episodes"] == 300
    assert 0 <= m["deal_rate"] <= 1 and 1 <= m["mean_rounds"] <= 10
    assert main(["simulate", "--episodes", "100", "--supplier", "midpoint",
                 "--retailer", "midpoint", "--supplier-value", "5000",
                 "--retailer-value", "8000"]) == 0
    out = capsys.readouterr().out
    assert "midpoint (supplier) vs midpoint (retailer)" in out and "6,500.000" in out


def test_tournament_prints_table_and_equilibrium(capsys):
    d = run_json(capsys, "simulate", "--tournament", "--episodes", "100", "--json")
    assert len(d["tournament"]) == 36
    assert d["equilibrium"]["spe"]["price"] == pytest.approx(6695.3125)
    assert d["equilibrium"]["myerson_satterthwaite"]["ratio"] == pytest.approx(1.0)
    assert main(["simulate", "--tournament", "--episodes", "100"]) == 0  # same compiled program
    out = capsys.readouterr().out
    assert "subgame-perfect equilibrium: agreement at 6,695.31 in round 2" in out
    assert "boulware     conceder" in out


@pytest.mark.parametrize("argv, message", [
    (["solve", "--rounds", "0"], "--rounds must be an integer in [1, 1000]"),
    (["solve", "--supplier-value", "12000"], "--supplier-value must be in [0, 10000], got 12000.0"),
    (["simulate", "--episodes", "0"], "--episodes must be in [1, 10000000]"),
    (["simulate", "--supplier", "nash"], "--supplier must be one of random, boulware"),
    (["simulate", "--supplier-low", "7000", "--supplier-high", "6000"],
     "--supplier-high/--supplier-value must be in [7000, 10000]"),
    (["simulate", "--discount", "0.9", "1.2"], "discount[retailer] must be in (0, 1]"),
])
def test_bad_input_is_one_clear_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bench_quick_emits_well_formed_figures():
    """Runs the real benchmark in a subprocess (it configures XLA devices at start-up); only the
    shape of the output is checked, never a speed."""
    out = subprocess.run(
        [sys.executable, "-m", "eqx_jax.cli", "bench", "env", "--quick", "--sizes", "64",
         "--seconds", "0.1", "--json"], capture_output=True, text=True, timeout=300, check=True)
    r = json.loads(out.stdout)
    assert set(r["jax_steps_per_s"]) == {"64"}
    for v in [*r["jax_steps_per_s"].values(), r["pettingzoo_steps_per_s"],
              r["adapter_steps_per_s"], r["speedup"]]:
        assert isinstance(v, float) and math.isfinite(v) and v > 0
    assert r["device"].startswith("cpu") and r["peak_memory"]["num_envs"] == 64
    assert len(r["speedup_paired_ratios"]) == 5


def test_train_help_states_the_configs_real_defaults():
    from eqx_jax.cli import build_parser
    from eqx_jax.negotiators import NEGOTIATORS
    from eqx_jax.ppo import PPOConfig

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    helps = {a.dest: a.help for a in sub._actions}
    cfg = PPOConfig()
    assert f"(default {cfg.total_timesteps})" in helps["total_steps"]
    assert f"(default {cfg.num_envs})" in helps["num_envs"]
    assert all(name in helps["opponent"] for name in NEGOTIATORS)
