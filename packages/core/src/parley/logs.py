"""Parley's logging: one logger tree, the ids of the running session on every record, and
JSON lines on request.

Every Parley package logs under ``parley.`` (``parley.session``, ``parley.openai``…), so one
level quiets or opens all of Parley; `configure` sets that level apart from the other
libraries' (aioice, httpcore…), which stay at WARNING unless asked.

A session binds its ids (`bind`) in the task that starts it, before it creates its own tasks,
so the ids reach every task the session runs (asyncio copies the context into each new task),
and two sessions never see each other's ids. The speaker runs each reply in a context that
also carries the turn's number (`turn_context`). The formatters read the ids from the record
(stamped by `ContextFilter`) or, failing that, from the current context: a provider's log line
inside a turn carries ``session_id``, ``call_id`` and ``turn_id`` without knowing about them.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import sys
from typing import Any, TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")
FORMAT_ENV = "PARLEY_LOG_FORMAT"
"""Read by `configure` when no format is passed (``text`` or ``json``)."""

ROOT = "parley"
"""The logger every Parley package logs under (``parley.<package>``)."""
APP = "__main__"
"""The script being run (``python agent.py run``, ``parley run agent.py``): it follows the
Parley level, not the libraries'."""

IDS = ("session_id", "call_id", "turn_id")

_session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "parley_session_id", default=None
)
_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "parley_call_id", default=None
)
_turn_id: contextvars.ContextVar[int | str | None] = contextvars.ContextVar(
    "parley_turn_id", default=None
)


def bind(session_id: str | None, call_id: str | None) -> None:
    """Mark the current context (the task that starts a session, and every task it creates
    from now on) as the session's; a turn id from another session is cleared."""
    _session_id.set(session_id)
    _call_id.set(call_id)
    _turn_id.set(None)


def turn_context(turn_id: int | str | None) -> contextvars.Context:
    """A copy of the current context with ``turn_id`` set, for the task that runs a turn
    (``asyncio.create_task(..., context=turn_context(3))``); None: not a user turn."""
    context = contextvars.copy_context()
    context.run(_turn_id.set, turn_id)
    return context


def current_ids() -> dict[str, Any]:
    """The ids bound in the current context; absent ones are left out."""
    values = {"session_id": _session_id.get(), "call_id": _call_id.get(), "turn_id": _turn_id.get()}
    return {key: value for key, value in values.items() if value is not None}


class ContextFilter(logging.Filter):
    """Stamps the current ids on each record where it is emitted (a handler that formats
    later, on another thread, still sees them). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_ids().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


def _record_ids(record: logging.LogRecord) -> dict[str, Any]:
    ids = current_ids()
    for key in IDS:
        value = getattr(record, key, None)
        if value is not None:
            ids[key] = value
    return ids


# Attributes every LogRecord has: whatever else a record holds came from ``extra=``.
# ``color_message`` is uvicorn's copy of the message with terminal colours.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
    *IDS,
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, the session's ids when a session runs, ``exception`` (the traceback) when
    there is one, and the record's ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "time": time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_record_ids(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, then the session's ids in brackets when a session
    runs (``[sess_1a2b call=demo turn=3]``)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        ids = _record_ids(record)
        if not ids:
            return text
        tags = [str(ids["session_id"])] if "session_id" in ids else []
        tags += [
            f"{key.removesuffix('_id')}={ids[key]}" for key in ("call_id", "turn_id") if key in ids
        ]
        return f"{text} [{' '.join(tags)}]"


class ParleyHandler(logging.StreamHandler[TextIO]):
    """The handler `configure` installs on the root logger (found again by its type)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.addFilter(ContextFilter())


def level_number(name: str | int) -> int:
    """``"debug"`` → `logging.DEBUG`; refuses names outside `LEVELS` with the list."""
    if isinstance(name, int):
        return name
    upper = name.upper()
    if upper not in LEVELS:
        raise ValueError(f"unknown log level {name!r}; use one of {', '.join(LEVELS)}")
    level: int = getattr(logging, upper)
    return level


def format_name(name: str | None = None) -> str:
    """``name``, else ``$PARLEY_LOG_FORMAT``, else ``text``; refuses unknown formats."""
    chosen = (name if name is not None else os.environ.get(FORMAT_ENV) or "text").lower()
    if chosen not in FORMATS:
        raise ValueError(f"unknown log format {chosen!r}; use one of {', '.join(FORMATS)}")
    return chosen


def formatter(name: str | None = None) -> logging.Formatter:
    return JsonFormatter() if format_name(name) == "json" else TextFormatter()


def configure(
    level: str | int = "INFO",
    libs_level: str | int = "WARNING",
    log_format: str | None = None,
    *,
    stream: TextIO | None = None,
) -> None:
    """Parley's loggers (and the script being run) at ``level``, every other library at
    ``libs_level``; lines in ``log_format`` (``text``/``json``, default ``$PARLEY_LOG_FORMAT``).

    Adds a handler (to stderr, or ``stream``) unless the application configured its own;
    calling it again changes the levels and the format of the handler it added."""
    chosen = formatter(log_format)
    parley_level, other_level = level_number(level), level_number(libs_level)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, ParleyHandler)), None)
    if handler is None and (stream is not None or not root.handlers):
        handler = ParleyHandler(stream)
        root.addHandler(handler)
    elif handler is not None and stream is not None:
        handler.setStream(stream)
    if handler is not None:
        handler.setFormatter(chosen)
    root.setLevel(other_level)
    for name in (ROOT, APP):
        logging.getLogger(name).setLevel(parley_level)
