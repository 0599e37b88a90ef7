"""The LLM backends the phraser calls: ``OllamaBackend`` (the official ``ollama`` client),
``OpenAIBackend`` (any OpenAI-compatible server, via httpx) and ``EmbeddedBackend`` (llama.cpp's
server from ``xllamacpp`` in a child process, see ``serve/llm_embedded.py``, then ``openai``),
the ``LLMBackend`` protocol they share and ``LLMUnavailable``, which they raise for a host that
cannot be reached."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol

import httpx

from serve.llm_embedded import EmbeddedServer, default_model_path
from serve.phrasing.types import LOGGER, PhrasingSettings

__all__ = ["EmbeddedBackend", "LLMBackend", "LLMUnavailable", "OllamaBackend", "OpenAIBackend"]

log = logging.getLogger(LOGGER)

class LLMUnavailable(Exception):
    """The LLM host cannot be reached or is not running (connection refused, child not up)."""


class LLMBackend(Protocol):
    """What the phraser needs from an LLM. ``generate`` raises LLMUnavailable, TimeoutError (via
    the caller's wait_for) or any other exception for a bad answer; ``grammar`` is a llama.cpp
    GBNF grammar for the answer, which a backend that cannot enforce one ignores."""

    name: str
    model: str

    async def start(self) -> None: ...
    async def generate(self, messages: list[dict[str, str]], *, seed: int,
                       grammar: str | None = None) -> str: ...
    async def health(self) -> dict[str, Any]: ...
    async def aclose(self) -> None: ...


class OllamaBackend:
    """Ollama via the official ``ollama`` client: POST /api/chat with ``stream: false`` and
    ``options.num_predict`` / ``options.temperature`` (Ollama's names); GET /api/tags for health."""

    name = "ollama"

    def __init__(self, settings: PhrasingSettings) -> None:
        import ollama  # imported lazily: the template-only server does not need it

        self.settings = settings
        self.model = settings.ollama_model
        self._ollama = ollama
        # httpx timeout as a second line of defence behind asyncio.wait_for.
        self._client = ollama.AsyncClient(host=settings.ollama_host, timeout=settings.timeout_s)

    async def start(self) -> None:
        return None

    async def generate(self, messages: list[dict[str, str]], *, seed: int,
                       grammar: str | None = None) -> str:
        """One chat call. ``grammar`` is ignored: Ollama constrains output only to JSON
        (``format``), which the prompt does not ask for (docs/phrasing.md, "Speed")."""
        try:
            resp = await self._client.chat(
                model=self.model,
                messages=messages,
                stream=False,
                options={
                    "num_predict": self.settings.num_predict,
                    "temperature": self.settings.temperature,
                    "seed": seed,
                },
            )
        except (ConnectionError, httpx.ConnectError) as exc:
            raise LLMUnavailable(str(exc)) from exc
        except httpx.TimeoutException as exc:  # httpx's own timeout may fire before wait_for's
            raise TimeoutError(str(exc)) from exc
        return resp.message.content or ""

    async def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.name, "model": self.model, "reachable": False,
                               "model_present": False, "detail": ""}
        try:
            listed = await asyncio.wait_for(self._client.list(), self.settings.timeout_s)
        except Exception as exc:  # noqa: BLE001 - health reports any failure, never raises
            out["detail"] = f"{type(exc).__name__}: {exc}"
            return out
        names = {m.model for m in listed.models if m.model}
        out["reachable"] = True
        out["model_present"] = self.model in names or f"{self.model}:latest" in names
        out["detail"] = "models: " + ", ".join(sorted(names)) if names else "no models pulled"
        return out

    async def aclose(self) -> None:
        await self._client.close()


class OpenAIBackend:
    """Any OpenAI-compatible server: POST {base}/chat/completions with ``max_tokens`` (OpenAI's
    name); GET {base}/models for health."""

    name = "openai"

    def __init__(self, settings: PhrasingSettings, base_url: str | None = None,
                 model: str | None = None) -> None:
        self.settings = settings
        self.base_url = (base_url or settings.openai_base_url).rstrip("/")
        self.model = model or settings.openai_model
        headers = {}
        if settings.openai_api_key:
            headers["Authorization"] = f"Bearer {settings.openai_api_key}"
        # trust_env=False: local LLM servers must not be routed through an HTTP proxy.
        # No kept-alive connections to llama.cpp: its server closes idle ones after a few
        # seconds, and a request sent on one it has just closed fails with "Server disconnected
        # without sending a response" (measured: 7 of 102 calls); a new local connection costs
        # well under a millisecond.
        limits = httpx.Limits(max_keepalive_connections=0) if self.llama_cpp else httpx.Limits()
        self._client = httpx.AsyncClient(timeout=settings.timeout_s, headers=headers,
                                         trust_env=False, limits=limits)

    async def start(self) -> None:
        return None

    #: Send llama.cpp's own request fields (``cache_prompt``, ``grammar``)? Only to a server
    #: known to be llama.cpp: other OpenAI-compatible servers may refuse unknown fields.
    llama_cpp = False

    async def generate(self, messages: list[dict[str, str]], *, seed: int,
                       grammar: str | None = None) -> str:
        """One chat completion; ``grammar`` is sent only to llama.cpp (``llama_cpp``)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.settings.num_predict,
            "temperature": self.settings.temperature,
            "seed": seed,
            "stream": False,
        }
        url = f"{self.base_url}/chat/completions"
        try:
            if self.llama_cpp:
                # Reuse the slot's evaluated prefix: the placeholder prompt repeats per (style,
                # action, role), so a repeat costs only its generated tokens.
                body["cache_prompt"] = True
                if grammar is not None:
                    body["grammar"] = grammar
                return await self._stream(url, body)
            resp = await self._client.post(url, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise LLMUnavailable(str(exc) or type(exc).__name__) from exc
        except httpx.TimeoutException as exc:  # httpx's own timeout may fire before wait_for's
            raise TimeoutError(str(exc)) from exc
        resp.raise_for_status()
        return resp.json()["choices"][0]["message"]["content"] or ""

    async def _stream(self, url: str, body: dict[str, Any]) -> str:
        """The answer of a streamed completion (server-sent events), joined. Streamed because
        llama.cpp's server stops a generation when a chunk cannot be written, i.e. soon after
        the phraser's deadline cancels this call and closes the connection; a non-streamed
        request runs on to ``max_tokens`` even after the client has gone (measured)."""
        parts: list[str] = []
        async with self._client.stream("POST", url, json={**body, "stream": True}) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[6:]).get("choices", []):
                    parts.append((choice.get("delta") or {}).get("content") or "")
        return "".join(parts)

    async def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.name, "model": self.model, "reachable": False,
                               "model_present": False, "detail": ""}
        try:
            resp = await self._client.get(f"{self.base_url}/models")
            resp.raise_for_status()
            ids = {m.get("id") for m in resp.json().get("data", [])}
        except Exception as exc:  # noqa: BLE001 - health reports any failure, never raises
            out["detail"] = f"{type(exc).__name__}: {exc}"
            return out
        out["reachable"] = True
        # llama.cpp's server answers any model name with the model it loaded.
        out["model_present"] = self.model in ids or self.model == "default" or len(ids) == 1
        out["detail"] = "models: " + ", ".join(sorted(str(i) for i in ids))
        return out

    async def aclose(self) -> None:
        await self._client.aclose()


class EmbeddedBackend(OpenAIBackend):
    """llama.cpp's server (xllamacpp) with SmolLM2-135M in a child process, used as ``openai``."""

    name = "embedded"
    llama_cpp = True

    def __init__(self, settings: PhrasingSettings) -> None:
        super().__init__(settings, base_url="http://127.0.0.1:0/v1", model="smollm2-135m")
        self.server = EmbeddedServer(
            settings.embedded_model_path or default_model_path(),
            threads=settings.embedded_threads,
            port=settings.embedded_port,
            n_ctx=settings.embedded_ctx,
            parallel=settings.embedded_parallel,
            start_timeout_s=settings.embedded_start_timeout_s,
        )

    async def start(self) -> None:
        if await self.server.start():
            self.base_url = f"{self.server.base_url}/v1"
            log.info("embedded LLM up at %s in %.2f s (%s, %d thread(s))", self.server.base_url,
                     self.server.start_seconds or 0.0, self.server.model_path,
                     self.settings.embedded_threads)
        else:
            log.warning("embedded LLM unavailable, using templates: %s", self.server.error)

    async def generate(self, messages: list[dict[str, str]], *, seed: int,
                       grammar: str | None = None) -> str:
        if not self.server.running:
            raise LLMUnavailable(self.server.error or "embedded LLM not running")
        return await super().generate(messages, seed=seed, grammar=grammar)

    async def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"backend": self.name, "model": self.server.model_path,
                               "reachable": False, "model_present": False, "detail": ""}
        if not self.server.running:
            out["detail"] = self.server.error or "not started"
            return out
        try:
            ok = (await self._client.get(f"{self.server.base_url}/health")).status_code == 200
        except Exception as exc:  # noqa: BLE001 - health reports any failure, never raises
            out["detail"] = f"{type(exc).__name__}: {exc}"
            return out
        out["reachable"] = out["model_present"] = ok
        out["detail"] = (f"llama.cpp at {self.server.base_url}, "
                         f"{self.settings.embedded_threads} thread(s), "
                         f"{self.settings.embedded_parallel} slot(s), "
                         f"started in {self.server.start_seconds or 0.0:.2f} s")
        return out

    async def aclose(self) -> None:
        await super().aclose()
        await self.server.stop()
