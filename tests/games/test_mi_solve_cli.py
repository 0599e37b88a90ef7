"""``eqx solve --game multi-issue`` (in-process, through the ``eqx`` main function): the output
against :func:`eqx_jax.games.multi_issue.solve_scenario_spe`, the JSON keys, the explanation's
accept rules against the reward model, and the errors (each names the option or the field)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eqx_jax.cli.main import main
from eqx_jax.games.multi_issue import (
    complete_information_game,
    make_multi_issue_params,
    solve_scenario_spe,
)
from eqx_jax.games.scenario import list_scenarios, load_scenario
from eqx_jax.solvers.multi_issue import deal_payoffs

FIXED = ("distributive-2-fixed", "integrative-4-fixed", "supply-chain-4-fixed")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["solve", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def solve_json(capsys, *argv: str) -> dict:
    rc, out, err = run(capsys, "--game", "multi-issue", *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


@pytest.mark.parametrize("name", ["distributive-2", "integrative-4", "supply-chain-4"])
def test_fixed_scenarios_are_the_prior_means(name):
    fixed, priors = load_scenario(f"{name}-fixed"), load_scenario(name)
    assert f"{name}-fixed" in list_scenarios()
    assert fixed.complete_information and not priors.complete_information
    at_mean = priors.fixed()
    assert fixed.issues == priors.issues and fixed.value_functions == priors.value_functions
    np.testing.assert_allclose(fixed.weight_low, at_mean.weight_low)
    np.testing.assert_allclose(fixed.reservation_low, at_mean.reservation_low)


@pytest.mark.parametrize("scenario", FIXED)
def test_json_is_the_solver_result(capsys, scenario):
    d = solve_json(capsys, "--scenario", scenario)
    ref = solve_scenario_spe(scenario)
    assert (d["outcome"], d["round"]) == (ref.outcome, ref.round) == ("deal", 2)
    assert d["offer"] == list(ref.agreement)
    assert (d["supplier_utility"], d["retailer_utility"]) == ref.utilities
    assert (d["supplier_payoff"], d["retailer_payoff"]) == ref.payoffs
    assert len(d["plans"]) == 10 and [p["on_path"] for p in d["plans"]] == [True] * 2 + [False] * 8
    assert [p["move"] for p in d["plans"]] == [p.move for p in ref.plans]
    assert d["game"] == "multi-issue" and d["scenario"] == scenario and not d["at_prior_mean"]
    for key in ("settings", "issues", "weights", "reservation", "agreement", "explanation"):
        assert key in d
    sc = load_scenario(scenario)
    assert list(d["agreement"]) == [i.name for i in sc.issues]
    for issue, x, shown in zip(sc.issues, ref.agreement, d["agreement"].values(), strict=True):
        if issue.discrete:  # by label where the issue has labels, else by index
            assert shown == (issue.labels[int(x)] if issue.labels else int(x))
        else:
            assert shown == pytest.approx(x)
    assert all(sum(w) == pytest.approx(1.0) for w in d["weights"].values())


def test_agreement_labels_by_hand(capsys):
    # integrative-4-fixed: supplier weights 4/9, 3/9, 1/9, 1/9 on price (increasing), payment
    # (decreasing), delivery (increasing), support (decreasing); its SPE offer in round 1 is the
    # top price, payment 0 days, delivery 2 days, standard support (index 1 of basic/standard/
    # premium): supplier 4/9 + 3/9 + 1/18 = 0.8333, retailer 4/9 + 1/6 = 0.6111.
    d = solve_json(capsys, "--scenario", "integrative-4-fixed")
    assert d["agreement"] == {"price_level": 4, "payment_days": 0, "delivery_days": 2,
                              "support_level": "standard"}
    assert d["supplier_utility"] == pytest.approx(15 / 18)
    assert d["retailer_utility"] == pytest.approx(11 / 18)


def test_accept_rules_pay_exactly_the_alternative(capsys):
    # The rule "accepts iff u >= floor" of each round: a deal at the floor pays the mover
    # exactly its value of not accepting (the plan's value), by the solver's reward model.
    d = solve_json(capsys, "--scenario", "supply-chain-4-fixed")
    g = complete_information_game("supply-chain-4-fixed")
    assert d["plans"][0]["accept_rule"] is None
    checked = 0
    for pl in d["plans"][1:]:
        if ">=" not in pl["accept_rule"]:
            continue
        who = ("supplier", "retailer").index(pl["mover"])
        floor = pl["accept_floor"]
        assert f"{floor:.4f}" in pl["accept_rule"]
        u = np.array([floor, floor])
        assert deal_payoffs(g, u, pl["round"])[who] == pytest.approx(pl["value"][who])
        checked += 1
    assert checked >= 7
    # On the path the responder's agreement utility clears its floor.
    assert d["retailer_utility"] >= d["plans"][1]["accept_floor"] - 1e-9


def test_options_reach_the_solver(capsys):
    d = solve_json(capsys, "--scenario", "distributive-2-fixed", "--rounds", "6", "--reward",
                   "discounted", "--discount", "0.9", "0.8")
    params = make_multi_issue_params("distributive-2-fixed", max_rounds=6,
                                     reward_model="discounted", discount=(0.9, 0.8))
    ref = solve_scenario_spe("distributive-2-fixed", params)
    assert (d["round"], d["offer"], d["supplier_payoff"]) == (ref.round, list(ref.agreement),
                                                              ref.payoffs[0])
    assert d["settings"]["max_rounds"] == 6 and d["settings"]["discount"] == [0.9, 0.8]
    assert d["settings"]["reward_model"] == "discounted" and len(d["plans"]) == 6
    assert ref.payoffs != solve_scenario_spe("distributive-2-fixed").payoffs


def test_at_prior_mean_solves_the_fixed_twin(capsys):
    d = solve_json(capsys, "--scenario", "integrative-4", "--at-prior-mean")
    twin = solve_json(capsys, "--scenario", "integrative-4-fixed")
    assert d["at_prior_mean"] and d["scenario"] == "integrative-4"
    for key in ("offer", "round", "supplier_utility", "retailer_utility", "supplier_payoff",
                "retailer_payoff", "weights", "reservation"):
        assert d[key] == twin[key], key


def test_text_output_has_the_outcome_the_plan_and_the_explanation(capsys):
    rc, out, _ = run(capsys, "--game", "multi-issue", "--scenario", "integrative-4-fixed")
    assert rc == 0
    for key in ("outcome", "agreement", "round", "supplier_utility", "retailer_utility",
                "supplier_payoff", "retailer_payoff"):
        assert f"  {key}" in out
    assert "support_level standard" in out and "Per-round plan" in out
    assert "Explanation:" in out and "Round 1: the supplier proposes" in out
    assert "Round 2: the retailer accepts" in out and "Outcome: deal" in out


@pytest.mark.parametrize("argv, words", [
    (("--scenario", "integrative-4"),
     ("utilities.supplier.weights[0]", "[0.35, 0.45]", "--at-prior-mean", "-fixed")),
    (("--scenario", "nope"), ("scenario", "integrative-4-fixed")),
    ((), ("--scenario",)),
    (("--scenario", "integrative-4-fixed", "--rounds", "0"), ("--rounds", "[1, 1000]")),
    (("--scenario", "integrative-4-fixed", "--discount", "1.5", "0.9"),
     ("--discount", "(0, 1]")),
    (("--scenario", "integrative-4-fixed", "--unit-cost", "3"), ("--unit-cost",)),
    (("--scenario", "integrative-4-fixed", "--supplier-value", "3"), ("--supplier-value",)),
])
def test_bad_input_names_the_option_or_field(capsys, argv, words):
    rc, _, err = run(capsys, "--game", "multi-issue", *argv)
    assert rc == 2
    for w in words:
        assert w in err, (w, err)


def test_multi_issue_options_are_refused_by_the_other_games(capsys):
    assert run(capsys)[0] == 0 and run(capsys, "--game", "price-quantity")[0] == 0
    for game in ("price", "price-quantity", "bundles"):
        rc, _, err = run(capsys, "--game", game, "--scenario", "integrative-4-fixed")
        assert rc == 2 and "--scenario does not apply" in err
        rc, _, err = run(capsys, "--game", game, "--at-prior-mean")
        assert rc == 2 and "--at-prior-mean does not apply" in err


def test_the_scenario_settings_apply_unless_an_option_moves(capsys, tmp_path):
    import yaml

    data = yaml.safe_load(open("configs/scenarios/integrative-4-fixed.yaml"))
    data["settings"] = {"max_rounds": 6, "utility_scale": 10}
    path = tmp_path / "six.yaml"
    path.write_text(yaml.safe_dump(data))
    d = solve_json(capsys, "--scenario", str(path))
    assert d["settings"]["max_rounds"] == 6 and len(d["plans"]) == 6
    assert d["settings"]["utility_scale"] == 10.0
    ref = solve_scenario_spe(str(path))
    assert d["supplier_payoff"] == ref.payoffs[0] and d["offer"] == list(ref.agreement)
    assert len(solve_json(capsys, "--scenario", str(path), "--rounds", "4")["plans"]) == 4
