"""`eqx bench train --quick`: the side-by-side benchmark runs end to end (eqx train, Ray RLlib,
trainer scaling, devices, NegMAS) and writes well-formed JSON, Markdown and PNG.

Only the shape and sanity of the figures are checked, never a speed: speed targets live in the
benchmark's own output (README, Benchmarks).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _finite_positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def test_bench_train_quick_emits_well_formed_figures(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("negmas")
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "eqx_jax.cli", "bench", "train", "--quick", "--json",
         "--sizes", "1", "64", "--rllib-seconds", "12", "--out", str(out)],
        capture_output=True, text=True, timeout=1500, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(proc.stdout)
    assert r == json.loads((out / "bench_train.json").read_text()) | {"outputs": r["outputs"]}
    for key in ("rllib_env_steps_per_s", "eqx_env_steps_per_s", "train_speedup",
                "negotiation_speedup"):
        assert _finite_positive(r[key]), key
    assert r["train_speedup"] == pytest.approx(
        r["eqx_env_steps_per_s"] / r["rllib_env_steps_per_s"])
    assert set(r["time_to_quality_s"]) == {"eqx", "rllib", "eqx_default_settings"}
    assert r["eqx_matched_batch"]["config"]["num_envs"] * 8 == (
        r["rllib"]["hyperparameters"]["train_batch_size"])
    for v in r["time_to_quality_s"].values():
        assert v is None or _finite_positive(v)
    for run in (r["eqx"], r["eqx_matched_batch"], r["rllib"]):
        assert run["curve"], "no learning curve"
        assert all(0.0 <= p["deal_rate"] <= 1.0 for p in run["curve"])
        times = [p["t_s"] for p in run["curve"]]
        assert times == sorted(times)
    assert _finite_positive(r["peak_memory_mb"]["eqx"])
    assert _finite_positive(r["peak_memory_mb"]["rllib"])
    assert set(r["scaling"]["trainer_env_steps_per_s"]) == {"1", "64"}
    assert all(_finite_positive(x) for x in r["scaling"]["trainer_env_steps_per_s"].values())
    assert {d["devices"] for d in r["devices"]["trainer"]} >= {1}
    assert r["device"].startswith("cpu")
    assert 0.0 <= r["negmas"]["agreement_match_rate"] <= 1.0
    md = (out / "bench_train.md").read_text()
    assert "| training env steps/s (incl. learning), `eqx train` defaults |" in md
    assert "QUICK MODE" in md
    png = (out / "bench_train.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_bench_train_names_the_missing_extra(tmp_path):
    code = ("import sys, importlib.util as u; real = u.find_spec; "
            "u.find_spec = lambda name, *a: None if name == 'ray' else real(name, *a); "
            "from eqx_jax.cli import main; sys.exit(main(['bench', 'train', '--quick', "
            f"'--out', {str(tmp_path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert 'pip install -e ".[rllib]"' in proc.stderr and "--skip-rllib" in proc.stderr
    assert "Traceback" not in proc.stderr
