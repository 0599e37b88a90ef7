"""``eqx bench env --game group`` (baselines/bench_env.py): tiny smoke runs of the benchmark and
of its N-scaling mode (the JSON fields, not the speed), and the CLI plumbing."""

from __future__ import annotations

import json

import pytest

from baselines import bench_env
from eqx_jax.cli.main import main

#: Tiny runs: the scan not unrolled (compiles in seconds), a few hundred steps per call.
TINY = {"seconds": 0.01, "quick": True, "unroll": 1, "work": 256}  # 8 episodes: 64 steps a call


@pytest.fixture(scope="module")
def result():
    return bench_env.bench_group("supply-chain-3p", sizes=(8,), scaling=True, scaling_size=8,
                                 scaling_agents=(2, 8), adapter_seconds=0.2, **TINY)


def test_group_bench_json_fields(result):
    json.dumps(result, allow_nan=False)  # strict JSON
    assert result["game"] == "group" and result["scenario"] == "supply-chain-3p"
    assert result["agents"] == 3 and result["parties"] == ["supplier", "retailer", "logistics"]
    assert set(result["jax_steps_per_s"]) == {"8"}
    assert all(v > 0 for v in result["jax_steps_per_s"].values())
    assert result["best_steps_per_s"] >= max(result["jax_steps_per_s"].values())
    assert result["adapter_steps_per_s"] > 0 and result["speedup_vs_adapter"] > 0
    mem = result["peak_memory"]
    assert mem["num_envs"] == 8 and mem["xla_program_mb"] > 0 and mem["process_peak_rss_mb"] > 0
    run = result["details"]["jax"]["8"]
    assert run["agents"] == 3 and run["steps_per_call"] == 64  # at least 64 steps a call
    assert run["episodes_per_call"] > 0  # random play ends episodes within 32 steps
    assert len(result["machine"]["load_average"]) == 3


def test_group_bench_scaling_fields(result):
    s = result["scaling"]
    assert s["scenario"] == "consortium-8p" and s["num_envs"] == 8
    assert set(s["steps_per_s"]) == set(s["xla_program_mb"]) == {"2", "8"}
    assert all(v > 0 for v in s["steps_per_s"].values())
    assert [s["details"]["jax"][n]["agents"] for n in ("2", "8")] == [2, 8]
    # more parties, a larger state: the program grows with N
    assert s["xla_program_mb"]["8"] > s["xla_program_mb"]["2"]
    assert bench_env.GROUP_SCALING_AGENTS == (2, 3, 4, 8)


def test_group_bench_report(result, capsys):
    bench_env.print_group_report(result)
    out = capsys.readouterr().out
    assert "supply-chain-3p" in out and "scaling (consortium-8p" in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("2 ", "8 "))]) == 2


def test_cli_passes_group_options(monkeypatch, capsys):
    seen = {}

    def fake(*args):
        seen["args"] = args
        return {"game": "group"}

    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    monkeypatch.setattr(bench_env, "bench_group", fake)
    assert main(["bench", "env", "--game", "group", "--scenario", "consortium-8p", "--agents",
                 "4", "--scaling", "--scaling-size", "64", "--sizes", "16", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"game": "group"}
    assert seen["args"] == ("consortium-8p", 4, [16], 2.0, False, True, 64)
    assert main(["bench", "env", "--game", "multi-issue", "--agents", "3"]) == 2
    assert "--game group" in capsys.readouterr().err


def test_cli_bad_agents_is_named(monkeypatch, capsys):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    assert main(["bench", "env", "--game", "group", "--agents", "9"]) == 2  # before any timing
    assert "agents" in capsys.readouterr().err
