"""``eqx user add`` and ``eqx serve`` refusals (no server needed beyond a data directory)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from server_helpers import server_env

from serve.settings import PRODUCTION_SECRET_ERROR


def test_user_add_from_stdin_then_duplicate(tmp_path, monkeypatch, capsys):
    env = server_env(tmp_path / "data")
    r = subprocess.run([sys.executable, "-m", "eqx_jax.cli", "user", "add", "carol"],
                       input="carol-password\n", capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "carol" in r.stdout

    # The rest in-process (same code path, without another interpreter start).
    from serve import cli

    monkeypatch.setenv("EQX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("carol-password\n"))
    assert cli.user_add("carol") == 2
    assert capsys.readouterr().err.strip() == "eqx user add: error: user 'carol' already exists"
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert cli.user_add("dave") == 2
    err = capsys.readouterr().err.strip()
    assert "at least 8 characters" in err and len(err.splitlines()) == 1

    from serve.auth import AuthError, authenticate
    from serve.db import Database

    db = Database(f"sqlite:///{tmp_path / 'data' / 'eqx.db'}")
    assert authenticate(db, "carol", "carol-password").username == "carol"
    with pytest.raises(AuthError):
        authenticate(db, "dave", "short")
    db.dispose()


def test_production_mode_refuses_the_default_secret(monkeypatch, capsys):
    from serve import cli

    monkeypatch.setenv("EQX_MODE", "production")
    monkeypatch.delenv("EQX_SECRET_KEY", raising=False)
    assert cli.serve(port=1) == 2
    assert capsys.readouterr().err.strip() == PRODUCTION_SECRET_ERROR  # one line, no traceback
    # A private secret passes the check (create_app would then start).
    from serve.settings import Settings

    Settings(mode="production", secret_key="x" * 40).check()


def test_missing_serve_extra_is_one_line(monkeypatch, capsys):
    from eqx_jax.cli import main

    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    with pytest.raises(SystemExit) as exc:
        main(["serve"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == (
        'the server needs the serve extra: pip install -e ".[serve]"')


def test_settings_from_environment(monkeypatch, tmp_path):
    from serve.settings import Settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/eqx")
    monkeypatch.setenv("OLLAMA_HOST", "http://ollama:11434")
    monkeypatch.setenv("OLLAMA_MODEL", "mistral")
    monkeypatch.setenv("EQX_LLM_BACKEND", "ollama")
    monkeypatch.setenv("EQX_CORS_ORIGINS", "http://a.example, http://b.example")
    s = Settings()
    assert s.db_url == "postgresql://u:p@db/eqx"
    assert s.cors_origins == ["http://a.example", "http://b.example"]
    p = s.phrasing_settings()
    assert (p.backend, p.ollama_host, p.ollama_model) == ("ollama", "http://ollama:11434",
                                                          "mistral")
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("EQX_DATA_DIR", str(tmp_path))
    assert Settings().db_url == f"sqlite:///{tmp_path.resolve() / 'eqx.db'}"
