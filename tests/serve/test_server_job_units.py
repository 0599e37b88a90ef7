"""Units of the job machinery, without a server: the bounds table and the founding design's
keys (:mod:`serve.job_config`), the incremental progress reader, the trainer's environment,
stopping an orphaned trainer only if it is still that process, and the comparison slots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError

from serve.job_config import JOB_LIMITS, TrainingConfig, limits_markdown
from serve.jobs import ProgressReader, fingerprint, stop_orphan, trainer_env
from serve.tournament import Busy, Slots

REPO = Path(__file__).resolve().parents[2]


def _error(body: dict) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as e:
        TrainingConfig.model_validate(body)
    err = e.value.errors()[0]
    return err["loc"], err["msg"]


def test_founding_design_keys_map_to_ppo_fields():
    cfg = TrainingConfig.model_validate(
        {"num_iterations": 1000, "learning_rate": 0.0003, "gamma": 0.99})
    # num_iterations PPO updates of num_envs x num_steps env steps (defaults 2048 x 8).
    assert cfg.ppo_fields() == {"lr": 0.0003, "gamma": 0.99, "total_timesteps": 1000 * 2048 * 8}
    cfg = TrainingConfig.model_validate({"num_iterations": 4, "num_envs": 64, "num_steps": 16})
    assert cfg.ppo_fields()["total_timesteps"] == 4096
    assert TrainingConfig().ppo_fields() == {}  # {}: the default PPOConfig


@pytest.mark.parametrize("body,loc,msg", [
    ({"num_envs": 100_000}, ("num_envs",), "num_envs must be an integer in [1, 8192], got 100000"),
    ({"num_steps": 0}, ("num_steps",), "num_steps must be an integer in [1, 256]"),
    ({"update_epochs": 1000}, ("update_epochs",), "update_epochs must be an integer in [1, 32]"),
    ({"num_history": 1 << 20}, ("num_history",), "num_history must be an integer in [1, 32]"),
    ({"seed": 2**63}, ("seed",), "seed must be an integer in [0, 2147483647]"),
    ({"lr": 5.0}, ("lr",), "lr must be in [1e-06, 1]"),
    ({"learning_rate": -1}, ("learning_rate",), "learning_rate must be in [1e-06, 1]"),
    ({"gamma": 1.5}, ("gamma",), "gamma must be in [0, 1]"),
    ({"hidden": [1 << 20]}, ("hidden",), "hidden (layer width) must be an integer in [1, 1024]"),
    ({"hidden": [8] * 9}, ("hidden",), "hidden (number of layers) must be an integer in [1, 4]"),
    ({"num_seeds": 64}, ("num_seeds",), "num_seeds must be an integer in [1, 8]"),
    ({"num_envs": 8192, "num_steps": 256}, (), "batch_size (num_envs × num_steps) must be"),
    ({"total_timesteps": 50_000_000, "num_envs": 1, "num_steps": 1}, (),
     "num_updates (total_timesteps // (num_envs × num_steps)) must be an integer in [1, 10000]"),
    ({"num_iterations": 50_000_000}, ("num_iterations",), "in [1, 10000]"),
    ({"env": {"max_rounds": 1000}}, ("env", "max_rounds"), "max_rounds must be an integer in"),
    ({"env": {"discount": [0.9, 0]}}, ("env", "discount"), "discount[retailer] must be in"),
    ({"env": {"max_price": 5e-324}}, ("env", "max_price"), "max_price must be in [1, 1000000]"),
    ({"lr": 0.1, "learning_rate": 0.1}, (), "give lr or learning_rate, not both"),
    ({"num_iterations": 3, "total_timesteps": 4096}, (), "not both"),
    ({"no_such_knob": 1, "epochs": 2}, (), "unknown training_config key(s) ['epochs', "
                                           "'no_such_knob']"),
    ({"num_envs": True}, ("num_envs",), "num_envs must be an integer"),
])
def test_every_bound_is_a_clear_error(body, loc, msg):
    got_loc, got_msg = _error(body)
    assert got_loc == loc and msg in got_msg, (got_loc, got_msg)


def test_schema_bounds_are_the_table():
    props = TrainingConfig.model_json_schema()["properties"]
    for name in ("num_envs", "num_steps", "lr", "gamma", "seed", "num_history", "update_epochs",
                 "num_minibatches", "total_timesteps", "num_iterations", "num_seeds"):
        (schema,) = [s for s in props[name]["anyOf"] if s.get("type") != "null"]
        assert (schema["minimum"], schema["maximum"]) == JOB_LIMITS[name], name
    (hidden,) = [s for s in props["hidden"]["anyOf"] if s.get("type") == "array"]
    assert hidden["maxItems"] == JOB_LIMITS["hidden.depth"][1]
    assert hidden["items"]["maximum"] == JOB_LIMITS["hidden.width"][1]


def test_readme_and_config_examples_are_within_the_bounds():
    import yaml

    from eqx_jax.ppo import PPOConfig

    for body in ({}, {"total_timesteps": 200000},
                 yaml.safe_load((REPO / "configs" / "complete-info.yaml").read_text()),
                 PPOConfig().to_dict()):
        TrainingConfig.model_validate(body)


def test_docs_print_the_table():
    doc = (REPO / "docs" / "server.md").read_text()
    assert limits_markdown() in doc, "regenerate: python -c 'from serve.job_config import " \
                                     "limits_markdown; print(limits_markdown())'"


def test_progress_is_read_incrementally_with_a_partial_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = ProgressReader(path)
    assert not reader.poll()  # no file yet
    path.write_bytes(b'{"update": 1}\n{"upd')
    assert reader.poll() and (reader.lines, reader.last) == (1, {"update": 1})
    offset = reader.offset
    assert not reader.poll() and reader.offset == offset  # nothing new: nothing read
    with path.open("ab") as f:
        f.write(b'ate": 2}\n\n{"update": 3}\n')
    assert reader.poll() and (reader.lines, reader.last) == (3, {"update": 3})
    assert reader.offset == path.stat().st_size


def test_the_trainer_gets_no_server_secret():
    env = trainer_env({"PATH": "/bin", "HOME": "/h", "JAX_PLATFORMS": "cpu", "LC_ALL": "C",
                       "XLA_FLAGS": "x", "OMP_NUM_THREADS": "1", "EQX_SECRET_KEY": "s",
                       "EQX_ADMIN_PASSWORD": "p", "DATABASE_URL": "postgresql://u:p@h/db",
                       "EQX_DATABASE_URL": "d", "AWS_SECRET_ACCESS_KEY": "k"})
    assert env == {"PATH": "/bin", "HOME": "/h", "JAX_PLATFORMS": "cpu", "LC_ALL": "C",
                   "XLA_FLAGS": "x", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_the_trainer_shares_the_compilation_cache_setting():
    # eqx serve --no-compile-cache (EQX_COMPILE_CACHE=0) reaches the trainers, and so does the
    # cache directory; the other EQX_ settings do not.
    env = trainer_env({"PATH": "/bin", "EQX_COMPILE_CACHE": "0",
                       "EQX_COMPILE_CACHE_DIR": "/c", "EQX_SECRET_KEY": "s"})
    assert env == {"PATH": "/bin", "EQX_COMPILE_CACHE": "0", "EQX_COMPILE_CACHE_DIR": "/c",
                   "PYTHONUNBUFFERED": "1"}


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)


def test_an_orphan_is_stopped_only_if_it_is_still_that_process():
    proc = _sleeper()
    try:
        record = fingerprint(proc.pid)
        assert record["pgid"] == proc.pid
        other = {**record, "create_time": record["create_time"] - 100}  # a reused pid
        assert not stop_orphan(other, grace_s=1) and proc.poll() is None
        assert not stop_orphan({**record, "cmdline": ["other"]}, grace_s=1)
        assert proc.poll() is None
        t0 = time.monotonic()
        assert stop_orphan(json.loads(json.dumps(record)), grace_s=5)
        assert proc.wait(5) == -15 and time.monotonic() - t0 < 5
        assert not stop_orphan(record, grace_s=1)  # gone
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not psutil.pid_exists(proc.pid) or proc.returncode is not None
    assert os.getpid() != proc.pid


def test_comparison_slots_per_user_and_in_total():
    slots = Slots()
    with slots.hold(1, total=2, per_user=1):
        with pytest.raises(Busy, match="EQX_MAX_TOURNAMENTS_PER_USER"):
            with slots.hold(1, total=2, per_user=1):
                pass
        with slots.hold(2, total=2, per_user=1):
            with pytest.raises(Busy, match="EQX_MAX_CONCURRENT_TOURNAMENTS"):
                with slots.hold(3, total=2, per_user=1):
                    pass
    with slots.hold(1, total=2, per_user=1):  # released
        pass
