"""The bundles game's backward induction (eqx_jax.solvers.bundles.solve_spe) against an
independent brute force: a plain recursive search of OpenSpiel's own game tree (pyspiel
states, their legal actions, chance outcomes and returns), with the same selection rule among
equally good moves. Small instances and horizons keep the full tree small."""

from __future__ import annotations

import numpy as np
import pytest

from eqx_jax.solvers.bundles import (
    TIE_EPS,
    all_offers,
    max_welfare,
    pareto_mask,
    pareto_splits,
    solve_spe,
    split_values,
    splits,
)

pyspiel = pytest.importorskip("pyspiel")

# Small pools (16 to 18 splits) from OpenSpiel's default instances.
INSTANCES = ["1,1,3 0,1,3 1,3,2", "3,1,1 1,4,3 0,2,8", "1,2,2 2,3,1 4,0,3",
             "1,1,3 7,3,0 0,4,2", "1,3,1 2,2,2 10,0,0"]


def _better(a, b, mover: int) -> bool:
    da, db = a[mover] - b[mover], a[1 - mover] - b[1 - mover]
    return da > TIE_EPS or (abs(da) <= TIE_EPS and db > TIE_EPS)


def _brute(state) -> tuple[np.ndarray, bool, list[int]]:
    """(expected returns (2,), whether the mover here agrees, the equilibrium actions from here
    without a chance end) by searching every continuation of the pyspiel ``state``."""
    if state.is_terminal():
        return np.asarray(state.returns(), dtype=np.float64), False, []
    if state.is_chance_node():
        outcomes = state.chance_outcomes()  # (Continue, 1 - prob_end), (End, prob_end)
        value = sum(prob * _brute(state.child(o))[0] for o, prob in outcomes)
        _, agrees, path = _brute(state.child(outcomes[0][0]))
        return value, agrees, path
    mover = state.current_player()
    agree = state.agree_action() if state.agree_action() in state.legal_actions() else None
    best = None  # (value, responder agrees, action, path)
    for action in state.legal_actions():
        if action == agree:
            continue
        v, agrees, path = _brute(state.child(action))
        if best is None or _better(v, best[0], mover) or (
                not _better(best[0], v, mover) and agrees and not best[1]):
            best = (v, agrees, action, path)
    if agree is not None:
        v, _, _ = _brute(state.child(agree))
        if not _better(best[0], v, mover):
            return v, True, [agree]
    return best[0], False, [best[2], *best[3]]


def _game(tmp_path, line: str, **settings):
    path = tmp_path / "one.txt"
    path.write_text(line + "\n")
    game = pyspiel.load_game("bargaining", {"instances_file": str(path), **settings})
    state = game.new_initial_state()
    state.apply_action(0)
    inst = state.instance()
    return state, np.array(inst.pool), np.array(inst.values)


@pytest.mark.parametrize("line", INSTANCES)
@pytest.mark.parametrize("settings", [
    {"max_turns": 3, "discount": 1.0, "prob_end": 0.0},
    {"max_turns": 4, "discount": 0.9, "prob_end": 0.0},
    {"max_turns": 4, "discount": 1.0, "prob_end": 0.3},
    {"max_turns": 3, "discount": 0.7, "prob_end": 0.5},
])
def test_spe_matches_brute_force_on_openspiel_tree(tmp_path, line, settings):
    state, pool, values = _game(tmp_path, line, **settings)
    value, _, path = _brute(state)
    spe = solve_spe(pool, values, **settings)
    assert np.allclose(spe.returns, value, atol=1e-9)
    agree = state.agree_action()
    assert spe.agreement == (path[-1] == agree)
    if spe.agreement:
        assert spe.turn == len(path) and spe.offer.tolist() == all_offers()[path[-2]].tolist()
        assert spe.proposer == (len(path) - 2) % 2
        factor = settings["discount"] ** max(0, spe.turn - 2)
        assert np.allclose(spe.values, factor * split_values(pool, values, spe.shares[0]))
    for k, action in enumerate(path[:-1] if spe.agreement else path, start=1):
        assert spe.plan[k - 1][0].tolist() == all_offers()[action].tolist()


def test_spe_by_hand():
    pool, values = [1, 2, 3], [[8, 1, 0], [4, 0, 2]]
    # One turn: player 0's offer ends the game, no agreement.
    spe = solve_spe(pool, values, max_turns=1)
    assert not spe.agreement and spe.returns.tolist() == [0.0, 0.0]
    # Two turns: player 1 agrees to anything (0 otherwise), so player 0 keeps what it values
    # (book + hats = 10) and gives the balls it does not value (6 to player 1).
    spe = solve_spe(pool, values, max_turns=2)
    assert spe.agreement and spe.turn == 2 and spe.offer.tolist() == [1, 2, 0]
    assert spe.returns.tolist() == [10.0, 6.0] and spe.pareto_optimal
    # Three turns: player 0 agrees to anything at turn 3, so player 1 would keep book and balls
    # (4 + 6 = 10); player 0 opens with the hats for itself and is agreed to at turn 2.
    spe = solve_spe(pool, values, max_turns=3)
    assert spe.returns.tolist() == [2.0, 10.0] and spe.offer.tolist() == [0, 2, 0]
    # A certain end after turn 2's offer: player 1 must agree at turn 2 -> as with two turns.
    spe = solve_spe(pool, values, max_turns=10, prob_end=1.0)
    assert spe.returns.tolist() == [10.0, 6.0] and spe.turn == 2


def test_pareto_helpers_by_hand():
    pool, values = np.array([1, 2, 3]), np.array([[8, 1, 0], [4, 0, 2]])
    front = {tuple(s) for s in pareto_splits(pool, values)}
    # Each item type to its higher-value player (book and hats to 0, balls to 1) is optimal,
    # and so is giving player 1 the book too; leaving hats to player 1 (worth 0 to it) is not.
    assert (1, 2, 0) in front and (0, 2, 0) in front and (1, 0, 0) not in front
    assert max_welfare(pool, values) == 16.0
    # Brute force: a split is optimal iff no split is at least as good for both and better
    # for one.
    all_s = splits(pool)
    vals = split_values(pool, values, all_s)
    for s, u in zip(all_s, vals, strict=True):
        dominated = np.any(np.all(vals >= u, axis=1) & np.any(vals > u, axis=1))
        assert bool(pareto_mask(pool, values, s)) == (not dominated)


def test_bad_solver_input_names_the_field():
    with pytest.raises(ValueError, match="max_turns"):
        solve_spe([1, 2, 3], [[8, 1, 0], [4, 0, 2]], max_turns=0)
    with pytest.raises(ValueError, match="discount"):
        solve_spe([1, 2, 3], [[8, 1, 0], [4, 0, 2]], discount=2.0)
    with pytest.raises(ValueError, match="pool total"):
        solve_spe([4, 2, 3], [[1, 1, 1], [1, 1, 1]])
