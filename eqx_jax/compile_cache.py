"""JAX's persistent compilation cache, on by default for the ``eqx`` command and the server.

A training run compiles its update loop before its first update (about 5 s on a 2-core CPU)
and the server compiles its env step and policies at start; JAX can keep the compiled programs
on disk and load them the next time the same program is built (same code, same shapes, same
JAX version: the key is a hash of all of them, so a stale entry is never used). README,
Private information, has the measured start-up times with and without it.

Settings (environment variables, read by :func:`enable_compile_cache`):

* ``EQX_COMPILE_CACHE``: ``0`` / ``false`` / ``off`` turns the cache off (``eqx ...
  --no-compile-cache`` sets it, so that worker processes inherit it);
* ``EQX_COMPILE_CACHE_DIR``: the cache directory (default ``$XDG_CACHE_HOME/eqx/jax``, i.e.
  ``~/.cache/eqx/jax``).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

#: The settings' environment variables.
ENV_SWITCH = "EQX_COMPILE_CACHE"
ENV_DIR = "EQX_COMPILE_CACHE_DIR"
_OFF = ("0", "false", "off", "no")
# JAX's default skips programs that compile in under 1 s; the env step and the policies of a
# small config compile in 0.1-0.5 s each and a start-up builds several, which together are what
# a repeated start spends, so everything above a few milliseconds is kept.
MIN_COMPILE_TIME_S = 0.01


def cache_enabled() -> bool:
    """Whether the settings ask for the cache (``EQX_COMPILE_CACHE`` not off)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in _OFF


def cache_dir() -> Path:
    """The cache directory of the settings (created on first use by JAX)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eqx" / "jax"


def disable_compile_cache() -> None:
    """Turn the cache off for this process and the processes it starts."""
    os.environ[ENV_SWITCH] = "0"
    jax.config.update("jax_enable_compilation_cache", False)


def enable_compile_cache() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` unless the settings turn
    it off; returns the directory, or None when off. Call it before the first compilation
    (JAX opens the cache once per process)."""
    if not cache_enabled():
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    directory = cache_dir()
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
