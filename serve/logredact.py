"""Tokens out of the logs: a logging filter that rewrites ``token=<value>`` (uvicorn logs a
WebSocket's path with its query string at INFO, and old clients still send ``?token=``) and
anything shaped like a JWT to ``[redacted]``.

:func:`uvicorn_log_config` is uvicorn's logging configuration with the filter on every handler;
:func:`install` puts it on the handlers of an existing logger (the root logger's).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"

# token=..., access_token=... in a query string (also percent-encoded separators).
_QUERY_TOKEN = re.compile(r"(?i)((?:^|[?&;\s]|%26|%3f)(?:access_)?token=)[^&;\s\"'#]+")
# A JWT: three base64url parts, the first two JSON objects ("eyJ" = base64 of '{"').
_JWT = re.compile(r"\beyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def redact(text: str) -> str:
    """``text`` with every token value replaced by ``[redacted]``."""
    return _JWT.sub(REDACTED, _QUERY_TOKEN.sub(rf"\g<1>{REDACTED}", text))


def _redact_arg(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Rewrites a record's message, arguments and exception text; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        # Arguments stay arguments: uvicorn's access formatter unpacks them.
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger) -> None:
    """Add the filter to each handler of ``logger`` (once)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactTokens) for f in handler.filters):
            handler.addFilter(RedactTokens())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default ``log_config`` with :class:`RedactTokens` on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": f"{__name__}.RedactTokens"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_tokens")
    return config
