"""JAX's persistent compilation cache (eqx_jax/compile_cache.py): its settings, and a repeated
``eqx train`` that loads every program from the cache instead of compiling it again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from eqx_jax.compile_cache import ENV_DIR, ENV_SWITCH, cache_dir, cache_enabled


def test_settings(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_SWITCH, raising=False)
    monkeypatch.delenv(ENV_DIR, raising=False)
    assert cache_enabled()
    for off in ("0", "false", "OFF", "no"):
        monkeypatch.setenv(ENV_SWITCH, off)
        assert not cache_enabled()
    monkeypatch.setenv(ENV_SWITCH, "1")
    assert cache_enabled()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "eqx" / "jax"
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def _train(tmp_path: Path, name: str, cache: Path, *flags: str) -> dict:
    env = {**os.environ, ENV_DIR: str(cache)}
    env.pop(ENV_SWITCH, None)  # the command's default: on
    # JAX reports each persistent-cache hit as a monitoring event; the child counts them.
    code = ("import sys, jax.monitoring as m; hits = []\n"
            "m.register_event_listener(lambda name, **kw: hits.append(name) "
            "if name.endswith('/compilation_cache/cache_hits') else None)\n"
            "from eqx_jax.cli import main; status = main(sys.argv[1:])\n"
            "print('cache hits', len(hits), file=sys.stderr); sys.exit(status)")
    out = subprocess.run(
        [sys.executable, "-c", code, "train", "--total-steps", "4096", "--num-envs", "256",
         "--out", str(tmp_path / name), "--json", *flags],
        capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    summary["cache_hits"] = int(out.stderr.rsplit("cache hits ", 1)[1].split()[0])
    return summary


def _entries(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("*") if p.is_file()} if cache.exists() else set()


def test_a_repeated_train_loads_its_programs_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    first = _train(tmp_path, "a", cache)
    entries = _entries(cache)
    assert entries, "the first run wrote no compiled programs"
    loops = {e for e in entries if e.startswith(("jit_run_updates", "jit_init"))}
    assert len(loops) == 2, sorted(entries)  # the training loop and its init
    assert first["cache_hits"] == 0
    second = _train(tmp_path, "b", cache)
    # The second run loaded the training loop, its init and the small programs from the cache
    # (at most a small eager op or two compiled afresh).
    assert second["cache_hits"] >= len(entries) - 3
    assert not {e for e in _entries(cache) - entries
                if e.startswith(("jit_run_updates", "jit_init"))}
    assert first["start_up_s"] > 0 and second["start_up_s"] > 0
    off = tmp_path / "off"
    assert _train(tmp_path, "c", off, "--no-compile-cache")["cache_hits"] == 0
    assert not _entries(off)
