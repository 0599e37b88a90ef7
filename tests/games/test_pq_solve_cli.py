"""``eqx solve --game price-quantity`` (in-process, through the ``eqx`` main function), and
``--game price`` (the default) unchanged."""

from __future__ import annotations

import json

import pytest

from eqx_jax import equilibrium
from eqx_jax.cli.main import main
from eqx_jax.solvers.price_quantity import solve_pq_spe


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["solve", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_is_the_solver_result_at_the_default_settings(capsys):
    rc, out, _ = run(capsys, "--game", "price-quantity", "--json")
    assert rc == 0
    d = json.loads(out)
    ref = solve_pq_spe(50.0, 160.0, 1.0, 10).to_dict()
    for key in ("price", "quantity", "round", "supplier_payoff", "retailer_payoff", "outcome",
                "efficient_quantity", "explanation"):
        assert d[key] == ref[key], key
    assert d["quantity"] == pytest.approx(110.0) and d["outcome"] == "deal"
    assert len(d["plans"]) == 10 and d["plans"][0]["kind"] == "agreement"
    assert d["game"] == "price-quantity" and d["settings"]["max_price"] == 200.0


def test_options_reach_the_solver(capsys):
    rc, out, _ = run(capsys, "--game", "price-quantity", "--unit-cost", "40",
                     "--demand-intercept", "150", "--demand-slope", "2", "--rounds", "6",
                     "--max-price", "120", "--max-quantity", "30", "--reward", "discounted",
                     "--discount", "0.9", "0.8", "--json")
    assert rc == 0
    d = json.loads(out)
    ref = solve_pq_spe(40.0, 150.0, 2.0, 6, reward_model="discounted", max_price=120.0,
                       max_quantity=30.0, discount=(0.9, 0.8))
    assert (d["price"], d["quantity"], d["round"]) == (ref.price, ref.quantity, ref.round)
    assert d["quantity"] == 30.0  # q* = 55 exceeds the cap
    assert d["settings"]["discount"] == [0.9, 0.8]


def test_text_output_has_the_outcome_the_plan_and_the_explanation(capsys):
    rc, out, _ = run(capsys, "--game", "price-quantity", "--rounds", "4")
    assert rc == 0
    ref = solve_pq_spe(50.0, 160.0, 1.0, 4)
    for key in ("outcome", "price", "quantity", "round", "supplier_payoff", "retailer_payoff"):
        assert f"  {key}" in out
    assert f"{ref.price:,.4f}" in out
    assert "Per-round plan" in out and out.count(" supplier  ") + out.count(" retailer  ") >= 4
    assert ref.explanation[1] in out and ref.explanation[-1] in out


def test_price_game_is_unchanged(capsys):
    rc, out, _ = run(capsys, "--json")
    assert rc == 0
    d = json.loads(out)
    ref = equilibrium.solve_spe(5000.0, 8000.0, 10).to_dict()
    for key, value in ref.items():
        assert d[key] == value, key
    assert "nash_bargaining_solution" in d
    rc, out2, _ = run(capsys, "--game", "price", "--json")
    assert rc == 0 and json.loads(out2) == d
    # the price game's own cap still applies by default (10000), and --max-price still works
    rc, _, err = run(capsys, "--retailer-value", "9500", "--max-price", "9000")
    assert rc == 2 and "--retailer-value" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--unit-cost", "500"], "--unit-cost must be in [0, 200], got 500.0"),
    (["--demand-intercept", "2500"], "--demand-intercept must be in [0, 2000]"),
    (["--demand-slope", "0"], "--demand-slope must be in (0,"),
    (["--max-quantity", "0"], "--max-quantity must be in (0,"),
    (["--rounds", "0"], "--rounds must be an integer in [1, 1000]"),
    (["--discount", "0", "0.9"], "--discount must be in (0, 1]"),
    (["--supplier-value", "10"], "--supplier-value does not apply to --game price-quantity"),
])
def test_bad_options_name_the_option(capsys, argv, message):
    rc, out, err = run(capsys, "--game", "price-quantity", *argv)
    assert rc == 2 and out == ""
    assert message in err


def test_price_quantity_options_are_refused_with_the_price_game(capsys):
    rc, _, err = run(capsys, "--unit-cost", "50")
    assert rc == 2 and "--unit-cost does not apply to --game price" in err


def test_unknown_game_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["solve", "--game", "no-such-game"])
    assert e.value.code == 2
    assert "--game" in capsys.readouterr().err
