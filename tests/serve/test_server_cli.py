"""``eqx user add`` and ``eqx serve`` refusals (no server needed beyond a data directory)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import pytest
from server_helpers import server_env


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


def test_user_passwd_sets_the_password_and_revokes_the_tokens(tmp_path, monkeypatch, capsys):
    from serve import cli
    from serve.auth import AuthError, authenticate
    from serve.db import Database, User

    monkeypatch.setenv("EQX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("erin-password\n"))
    assert cli.user_add("erin") == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("erin-new-password\n"))
    assert cli.user_passwd("erin") == 0
    assert "tokens are revoked" in capsys.readouterr().out
    db = Database(f"sqlite:///{tmp_path / 'data' / 'eqx.db'}")
    try:
        assert authenticate(db, "erin", "erin-new-password").username == "erin"
        with pytest.raises(AuthError):
            authenticate(db, "erin", "erin-password")
        with db.session() as s:  # the generation every token of erin's carries went up
            assert s.query(User).filter_by(username="erin").one().token_generation == 1
    finally:
        db.dispose()
    monkeypatch.setattr(sys, "stdin", io.StringIO("whatever-password\n"))
    assert cli.user_passwd("nobody") == 2
    assert capsys.readouterr().err.strip() == "eqx user passwd: error: no user 'nobody'"
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert cli.user_passwd("erin") == 2
    assert "at least 8 characters" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["production", "development"])
def test_a_short_secret_key_is_refused_in_every_mode(monkeypatch, capsys, mode):
    from serve import cli

    monkeypatch.setenv("EQX_MODE", mode)
    monkeypatch.setenv("EQX_SECRET_KEY", "x" * 31)
    with pytest.raises(SystemExit) as exc:
        cli.serve(port=1)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()  # one line, no traceback, the variable named
    assert err.startswith("invalid setting EQX_SECRET_KEY:") and "at least 32" in err
    assert len(err.splitlines()) == 1
    # A long enough key passes, and no key at all too (the server generates one).
    from serve.settings import Settings

    Settings(mode=mode, secret_key="x" * 32).check()
    monkeypatch.delenv("EQX_SECRET_KEY")
    assert Settings(mode=mode).secret_key is None


def test_missing_serve_extra_is_one_line(monkeypatch, capsys):
    from eqx_jax.cli import main

    # import fastapi / uvicorn -> ImportError, even where another test of this process has
    # imported them (and serve.app) already.
    for name in ("fastapi", "uvicorn", "serve.app"):
        monkeypatch.setitem(sys.modules, name, None)
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
    p = s.llm
    assert (p.backend, p.ollama_host, p.ollama_model) == ("ollama", "http://ollama:11434",
                                                          "mistral")
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("EQX_DATA_DIR", str(tmp_path))
    assert Settings().db_url == f"sqlite:///{tmp_path.resolve() / 'eqx.db'}"


def _clear_llm_env(monkeypatch):
    import os

    for k in list(os.environ):
        if k.startswith(("EQX_LLM", "EQX_OLLAMA", "EQX_OPENAI", "EQX_EMBEDDED")) or k in (
                "OLLAMA_HOST", "OLLAMA_MODEL"):
            monkeypatch.delenv(k)


def test_llm_settings_arrive_nested_from_the_same_variables(monkeypatch):
    from serve.phrasing import PhrasingSettings, make_phraser
    from serve.settings import LLMSettings, Settings

    _clear_llm_env(monkeypatch)
    assert PhrasingSettings is LLMSettings
    assert Settings().llm == LLMSettings()  # defaults
    env = {
        "EQX_LLM_BACKEND": "openai", "EQX_LLM_TIMEOUT_S": "2.5", "EQX_LLM_MAX_PENDING": "3",
        "EQX_LLM_MAX_CONCURRENT": "2", "EQX_LLM_NUM_PREDICT": "40",
        "EQX_LLM_TEMPERATURE": "0.2", "EQX_LLM_RETRIES": "0", "EQX_LLM_PROMPT": "chat",
        "OLLAMA_HOST": "http://plain-ollama:11434", "OLLAMA_MODEL": "mistral",
        "EQX_OPENAI_BASE_URL": "http://llm:8081/v1", "EQX_OPENAI_MODEL": "qwen",
        "EQX_OPENAI_API_KEY": "sk-test", "EQX_EMBEDDED_MODEL_PATH": "/models/x.gguf",
        "EQX_EMBEDDED_THREADS": "3", "EQX_EMBEDDED_PORT": "8099", "EQX_EMBEDDED_CTX": "2048",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    llm = Settings().llm
    assert (llm.backend, llm.timeout_s, llm.max_pending, llm.max_concurrent, llm.num_predict,
            llm.temperature, llm.retries, llm.prompt) == ("openai", 2.5, 3, 2, 40, 0.2, 0, "chat")
    assert (llm.ollama_host, llm.ollama_model) == ("http://plain-ollama:11434", "mistral")
    assert (llm.openai_base_url, llm.openai_model, llm.openai_api_key) == (
        "http://llm:8081/v1", "qwen", "sk-test")
    assert (llm.embedded_model_path, llm.embedded_threads, llm.embedded_port,
            llm.embedded_ctx) == ("/models/x.gguf", 3, 8099, 2048)
    # The EQX_ names win over the plain ones.
    monkeypatch.setenv("EQX_OLLAMA_HOST", "http://eqx-ollama:11434")
    monkeypatch.setenv("EQX_OLLAMA_MODEL", "llama3.2")
    llm = Settings().llm
    assert (llm.ollama_host, llm.ollama_model) == ("http://eqx-ollama:11434", "llama3.2")
    # The phraser takes the nested model as it is.
    phraser = make_phraser(llm)
    assert phraser.settings is llm and phraser.backend_name == "openai"
    assert phraser.prompt == "chat"
    asyncio.run(phraser.aclose())


@pytest.mark.parametrize(("name", "value"), [
    ("EQX_LLM_TIMEOUT_S", "0"), ("EQX_LLM_BACKEND", "gpt"), ("EQX_LLM_PROMPT", "poem"),
    ("EQX_EMBEDDED_THREADS", "0"), ("EQX_EMBEDDED_PORT", "eighty"), ("EQX_PORT", "0"),
])
def test_a_bad_setting_names_its_variable(monkeypatch, capsys, name, value):
    from serve import cli

    _clear_llm_env(monkeypatch)
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exc:
        cli._settings()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"invalid setting {name}: ") and len(err.splitlines()) == 1, err
