"""Training split over devices (jax.sharding) and hosts (jax.distributed), on this CPU.

JAX fixes its device count when its backend starts, so each check runs in a fresh Python
process with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (N CPU "devices").
The claims: the same global batch gives the same learning result on 1 device and on 4 (up to
floating-point rounding: sums are added up in another order), seeds and envs are both split,
a bad device count is a clear error, and ``eqx train --distributed`` runs one training over
two processes (2 devices each) with the result of a 1-device run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"num_envs": 64, "num_steps": 8, "total_timesteps": 64 * 8 * 4, "hidden": [16]}


def _env(devices: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env.update(extra)
    return env


def _run_python(code: str, devices: int) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=_env(devices),
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


COMPARE = """
import json, jax, numpy as np
from eqx_jax.ppo import PPOConfig, make_train
cfg = PPOConfig(**{cfg})
out = {{}}
for d in (1, 4):
    runner, metrics = make_train(cfg, devices=d)(jax.random.key(0))
    out[d] = {{
        "metrics": {{k: np.asarray(v).tolist() for k, v in metrics.items()}},
        "params": [np.asarray(x).ravel().tolist() for x in jax.tree.leaves(runner.params)],
        "mesh": dict(runner.env_state.t.sharding.mesh.shape),
        "shards": len(runner.env_state.t.addressable_shards),
    }}
print(json.dumps(out))
"""


def _assert_same_learning(one: dict, four: dict) -> None:
    for k, v in one["metrics"].items():
        np.testing.assert_allclose(four["metrics"][k], v, rtol=2e-4, atol=2e-5, err_msg=k)
    for a, b in zip(one["params"], four["params"], strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("num_seeds, mesh4", [(1, {"seed": 1, "env": 4}),
                                              (2, {"seed": 2, "env": 2})])
def test_four_devices_learn_what_one_device_learns(num_seeds, mesh4):
    cfg = {**SMALL, "num_seeds": num_seeds}
    res = _run_python(COMPARE.format(cfg=repr(cfg)), devices=4)
    one, four = res["1"], res["4"]
    assert one["mesh"] == {"seed": 1, "env": 1}
    assert four["mesh"] == mesh4 and four["shards"] == 4  # really split over 4 devices
    assert len(four["metrics"]["deal_rate"]) == num_seeds
    _assert_same_learning(one, four)
    # Learning happened (the comparison is not between two untouched initialisations).
    assert any(abs(x) > 0 for x in four["metrics"]["approx_kl_shared"][0])


def test_device_count_that_does_not_split_the_envs_is_a_clear_error():
    code = """
    import json
    from eqx_jax.ppo import PPOConfig, make_train_chunked
    errors = []
    for devices in (4, 9):
        try:
            make_train_chunked(PPOConfig(num_envs=6, num_steps=8, total_timesteps=48),
                               devices=devices)
        except ValueError as e:
            errors.append(str(e))
    print(json.dumps(errors))
    """
    errors = _run_python(code, devices=4)
    assert len(errors) == 2
    assert "num_envs (6) must be a multiple of the 4 devices" in errors[0]
    assert "devices must be in [1, 4]" in errors[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_training_over_two_processes(tmp_path):
    """``eqx train --distributed``: 2 processes x 2 CPU devices, coordinated by
    jax.distributed over localhost, give the result of a 1-device run; process 0 writes the run,
    both write the checkpoint, and a resume on one device continues it."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(SMALL))
    eqx = [sys.executable, "-m", "eqx_jax.cli", "train", "--config", str(cfg), "--json"]
    addr = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen(
        [*eqx, "--distributed", "--out", str(tmp_path / "two_hosts")],
        env=_env(2, JAX_COORDINATOR_ADDRESS=addr, JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    stdout = outs[0][0]  # Gloo logs its connections on stdout before the summary
    summary = json.loads(stdout[stdout.index("\n{") + 1:] if not stdout.startswith("{")
                         else stdout)
    assert summary["processes"] == 2 and summary["devices"] == 4 and summary["finished"]
    single = subprocess.run([*eqx, "--devices", "1", "--out", str(tmp_path / "one")],
                            env=_env(1), capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert single.returncode == 0, single.stderr[-3000:]

    def rows(run: str) -> list[dict]:
        return [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    two, one = rows("two_hosts"), rows("one")
    assert len(two) == len(one) == 4  # written once, by process 0
    for a, b in zip(one, two, strict=True):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=2e-4, atol=2e-5, err_msg=k)
    assert (tmp_path / "two_hosts" / "policy.eqx").is_file()
    assert (tmp_path / "two_hosts" / "checkpoint").is_dir()
    assert not (tmp_path / "two_hosts" / "checkpoint.tmp").exists()


def test_distributed_needs_all_three_variables(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "eqx_jax.cli", "train", "--distributed", "--out",
         str(tmp_path / "r")], env=_env(1, JAX_NUM_PROCESSES="2"), capture_output=True,
        text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2
    assert "JAX_COORDINATOR_ADDRESS" in out.stderr and "Traceback" not in out.stderr
