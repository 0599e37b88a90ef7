"""The layer contracts of pyproject.toml (lint-imports) hold, and they do catch a wrong arrow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("eqx_jax", "serve", "baselines", "scripts")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter (dev extra) missing")


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold():
    r = _lint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("module, line, broken", [
    # The core reaching up to the server, even inside a function, breaks the outer contract.
    ("eqx_jax/env.py", "def _up():\n    import serve.settings  # noqa\n",
     "serve, baselines and scripts use eqx_jax; eqx_jax uses none of them BROKEN"),
    # The game importing the trainer breaks the core's own order.
    ("eqx_jax/env.py", "def _up():\n    import eqx_jax.ppo  # noqa\n",
     "eqx_jax: commands > training, evaluation > PPO > play > game"),
])
def test_a_wrong_arrow_is_caught(tmp_path, module, line, broken):
    root = _copy(tmp_path)
    with open(root / module, "a") as f:
        f.write("\n\n" + line)
    r = _lint(root)
    assert r.returncode != 0
    assert broken in r.stdout and "BROKEN" in r.stdout, r.stdout
