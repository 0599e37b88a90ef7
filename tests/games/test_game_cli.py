"""`eqx train --game` and `eqx evaluate` on a game beyond one price, end to end."""

from __future__ import annotations

import json
import subprocess
import sys


def _eqx(*args):
    return subprocess.run([sys.executable, "-m", "eqx_jax.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_train_and_evaluate_price_quantity(tmp_path):
    run = tmp_path / "pq"
    out = _eqx("train", "--game", "price-quantity", "--total-steps", "16384", "--out", str(run),
               "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["finished"] and "mean_quantity" in summary["last_update"]
    config = json.loads((run / "config.json").read_text())
    assert config["game"] == "price-quantity"
    assert (run / "training_curves.png").stat().st_size > 0
    out = _eqx("evaluate", str(run), "--episodes", "200", "--no-exploitability", "--json")
    assert out.returncode == 0, out.stderr
    e = json.loads(out.stdout)["evaluation"]
    assert e["game"] == "price-quantity" and not e["complete_information"]
    for key in ("deal_rate", "mean_quantity", "efficiency", "spe_price", "spe_round_match"):
        assert key in e["greedy"]
    text = _eqx("evaluate", str(run), "--episodes", "200", "--no-exploitability")
    assert text.returncode == 0 and "spe_quantity" in text.stdout
    bad = _eqx("evaluate", str(run), "--tournament")
    assert bad.returncode == 2 and "price" in bad.stderr
    bad = _eqx("evaluate", str(run), "--exploitability", "--br-steps", "64")
    assert bad.returncode == 2 and "--br-steps must be at least 16384" in bad.stderr


def test_train_refuses_price_options_in_another_game(tmp_path):
    out = _eqx("train", "--game", "price-quantity", "--supplier-value", "5000", "--out",
               str(tmp_path / "x"))
    assert out.returncode == 2 and "--supplier-value" in out.stderr
    out = _eqx("train", "--game", "chess", "--out", str(tmp_path / "x"))
    assert out.returncode == 2 and "--game" in out.stderr
