"""Training runs on disk: resume equals uninterrupted, checkpoints, policy files, the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from eqx_jax.cli import main
from eqx_jax.ppo import PPOConfig, policy_action, seed_params
from eqx_jax.train import (
    RunError,
    checkpoint_path,
    chunked_trainer,
    load_checkpoint,
    load_config_file,
    load_policy,
    save_checkpoint,
    train_run,
)

TINY = dict(num_envs=32, num_steps=8, total_timesteps=32 * 8 * 6, num_minibatches=2,
            update_epochs=1, hidden=(16, 16), shared_network=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run and one stopped after 4 updates then resumed (other chunk sizes)."""
    base = tmp_path_factory.mktemp("runs")
    cfg = PPOConfig(**TINY)
    full = train_run(cfg, base / "full", chunk_updates=6, progress=False)
    part = train_run(cfg, base / "resumed", chunk_updates=3, stop_after_updates=4,
                     progress=False)
    assert part["updates"] == 4 and not part["finished"]
    resumed = train_run(None, base / "resumed", resume=True, chunk_updates=1, progress=False)
    return base, full, resumed


def test_resume_equals_uninterrupted(runs):
    base, full, resumed = runs
    assert full["finished"] and resumed["finished"] and resumed["updates"] == 6
    assert (base / "full" / "metrics.jsonl").read_text() == \
        (base / "resumed" / "metrics.jsonl").read_text()
    _, p_full = load_policy(base / "full")
    _, p_res = load_policy(base / "resumed")
    for x, y in zip(jax.tree.leaves(p_full), jax.tree.leaves(p_res), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_run_directory_contents(runs):
    base, full, _ = runs
    names = {p.name for p in (base / "full").iterdir()}
    assert {"config.json", "metrics.jsonl", "checkpoint", "policy.eqx", "summary.json",
            "training_curves.png"} <= names
    rows = [json.loads(x) for x in (base / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == list(range(1, 7))
    assert {"deal_rate", "mean_rounds", "return_supplier", "return_retailer"} <= set(rows[0])
    assert (base / "full" / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cfg = json.loads((base / "full" / "config.json").read_text())
    assert cfg["num_envs"] == 32 and "eqx_version" in cfg


def test_checkpoint_roundtrip_gives_identical_actions(tmp_path):
    cfg = PPOConfig(**TINY)
    init, train_chunk = chunked_trainer(cfg)
    runner, _ = train_chunk(init(jax.random.key(3)), 2)
    save_checkpoint(tmp_path, runner)
    restored = load_checkpoint(tmp_path, init(jax.random.key(99)))
    obs = runner.obs["supplier"][0]
    for net in ("supplier", "retailer"):
        a = policy_action(seed_params(runner.params)[net], obs, jax.random.key(0), True,
                          config=cfg)
        b = policy_action(seed_params(restored.params)[net], obs, jax.random.key(0), True,
                          config=cfg)
        np.testing.assert_array_equal(np.asarray(a["action_type"]), np.asarray(b["action_type"]))
        np.testing.assert_array_equal(np.asarray(a["price"]), np.asarray(b["price"]))
    assert np.array_equal(jax.random.key_data(runner.key), jax.random.key_data(restored.key))
    # Continuing from the restored state equals continuing from the original.
    m1 = train_chunk(runner, 1)[1]
    m2 = train_chunk(restored, 1)[1]
    for k in m1:
        np.testing.assert_array_equal(np.asarray(m1[k]), np.asarray(m2[k]))


def test_a_kill_between_the_checkpoint_renames_leaves_the_previous_one(tmp_path):
    """save_checkpoint renames the old checkpoint aside before the new one takes its place; a
    process killed between the two renames (no ``checkpoint``, a complete ``checkpoint.old``)
    resumes from the old one."""
    cfg = PPOConfig(**TINY)
    init, train_chunk = chunked_trainer(cfg)
    first, _ = train_chunk(init(jax.random.key(3)), 1)
    save_checkpoint(tmp_path, first)
    second, _ = train_chunk(first, 1)
    save_checkpoint(tmp_path, second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")  # the instant of the kill
    assert checkpoint_path(tmp_path) == tmp_path / "checkpoint.old"
    restored = load_checkpoint(tmp_path, init(jax.random.key(99)))
    np.testing.assert_array_equal(np.asarray(restored.update), np.asarray(second.update))
    third, _ = train_chunk(restored, 1)
    save_checkpoint(tmp_path, third)  # the next save cleans up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    assert checkpoint_path(tmp_path / "nothing") is None


def test_export_import_and_errors(runs, tmp_path, capsys):
    base, _, _ = runs
    assert main(["export", str(base / "full"), str(tmp_path / "p.eqx")]) == 0
    assert main(["import", str(tmp_path / "p.eqx"), "--out", str(tmp_path / "imp")]) == 0
    capsys.readouterr()
    cfg, params = load_policy(tmp_path / "imp")
    _, orig = load_policy(base / "full")
    assert cfg.num_envs == 32 and sorted(params) == ["retailer", "supplier"]
    for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(orig), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    (tmp_path / "junk.eqx").write_bytes(b"not a policy")
    with pytest.raises(RunError, match="not an EquilibriumX policy file"):
        load_policy(tmp_path / "junk.eqx")
    assert main(["train", "--out", str(base / "full")]) == 2
    assert "already holds a run; use --resume" in capsys.readouterr().err
    assert main(["train", "--resume", "--seed", "1", "--out", str(base / "full")]) == 2
    assert "drop --seed" in capsys.readouterr().err
    assert main(["train", "--total-steps", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--total-steps" in capsys.readouterr().err


def test_config_files(tmp_path):
    (tmp_path / "c.yaml").write_text("num_envs: 64\nenv:\n  max_rounds: 6\n")
    d = load_config_file(tmp_path / "c.yaml")
    assert PPOConfig.from_dict(d).env_params.max_rounds == 6
    (tmp_path / "c.json").write_text('{"gamma": 0.9}')
    assert load_config_file(tmp_path / "c.json") == {"gamma": 0.9}
    (tmp_path / "bad.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(RunError, match="must hold a mapping"):
        load_config_file(tmp_path / "bad.yaml")
    with pytest.raises(RunError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")


def test_progress_off_a_terminal_is_plain_lines():
    """Logs get whole lines (no carriage returns), at most one per interval plus the last."""
    import io

    from eqx_jax.train import Progress

    out = io.StringIO()
    bar = Progress(total=10, done=0, out=out, enabled=True, log_every_s=3600.0)
    for done in range(1, 11):
        bar.update(done, 1234.5, 0.5)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 2  # the first update, then the end (the interval never passed)
    assert lines[0].startswith("updates 1/10:") and lines[-1].startswith("updates 10/10:")
    assert "1,234 env steps/s, deal rate 0.500" in lines[-1] and "100%" in lines[-1]
    silent = io.StringIO()
    Progress(total=10, done=0, out=silent, enabled=False).update(5, 1.0, 0.5)
    assert silent.getvalue() == ""


def test_evaluate_reports_welfare_efficiency_and_exploitability_by_default(runs, capsys):
    base, _, _ = runs
    assert main(["evaluate", str(base / "full"), "--episodes", "300", "--br-steps",
                 str(32 * 8 * 2), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    g = out["evaluation"]["greedy"]
    for key in ("welfare_efficiency", "supplier_spe_reward",
                "retailer_price_of_private_information", "surplus_captured", "pareto_score"):
        assert math.isfinite(g[key]), key
    x = out["exploitability"]
    assert x["br_init"] == "incumbent" and x["total_timesteps"] == 32 * 8 * 2
    assert x["num_episodes"] == 300 and math.isfinite(x["supplier"]["gain_share"])
    assert main(["evaluate", str(base / "full"), "--episodes", "300",
                 "--no-exploitability"]) == 0
    text = capsys.readouterr().out
    assert "welfare_efficiency" in text and "founding design's definitions" in text
    assert "Exploitability" not in text
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(base / "full"), "--br-init", "warm"])
    assert e.value.code == 2 and "incumbent" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_config_file_is_a_valid_config(path):
    cfg = PPOConfig.from_dict(load_config_file(path))
    assert cfg.env_params is not None
