"""Terminal niceties for ``run`` and ``serve``: logging set-up, the splash, printed URLs, and
the conversation as ``run`` prints it."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sys
from typing import TYPE_CHECKING, TextIO

from parley import logs
from parley.edge import ParticipantJoined, ParticipantLeft
from parley.events import AgentTurnEnded, SessionEvent, Transcript, TurnMetricsReady

if TYPE_CHECKING:
    from parley.session import AgentSession

LOG_LEVELS = logs.LEVELS
LOG_FORMATS = logs.FORMATS
HTTP_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

_SPLASH = r"""
  ___          _
 | _ \__ _ _ _| |___ _  _
 |  _/ _` | '_| / -_) || |
 |_| \__,_|_| |_\___|\_, |
                     |__/   {version} · {mode}
"""


def configure_logging(
    log_level: str = "INFO",
    http_log_level: str = "INFO",
    *,
    log_level_libs: str = "WARNING",
    log_format: str | None = None,
) -> None:
    """Parley's loggers (and the script's) at ``log_level``, uvicorn's at ``http_log_level``,
    every other library's at ``log_level_libs``; ``text`` or ``json`` lines (default
    ``$PARLEY_LOG_FORMAT``, else text). See `parley.logs.configure`."""
    http = logs.level_number(http_log_level)  # refused before anything changes
    logs.configure(log_level, log_level_libs, log_format)
    # uvicorn sets these itself from its own log_level too; set here for what logs first.
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(http)


def console_log_levels(
    log_level: str, http_log_level: str | None, log_level_libs: str | None
) -> tuple[str, str]:
    """``run``'s HTTP and library levels when not given: quiet (WARNING: no request lines, no
    ICE chatter) so the terminal shows the conversation, unless ``log_level`` is DEBUG."""
    debug = log_level.upper() == "DEBUG"
    quiet = "DEBUG" if debug else "WARNING"
    return http_log_level or quiet, log_level_libs or quiet


def idle_notice(idle_timeout: float | None) -> str:
    """What ``run`` says about when it leaves a call no one is on."""
    if not idle_timeout:
        return "Idle timeout off: the agent stays on the call until Ctrl-C."
    return (
        f"The agent leaves {idle_timeout:g} s after the last person does (--idle-timeout 0: "
        "never); Ctrl-C stops it sooner."
    )


class ConversationPrinter:
    """Prints a session's conversation as it happens: ``you: ...`` for what the user said
    (each final transcript), ``agent (0.82 s): ...`` for what the agent said (what was
    heard, with the turn's latency from the end of the user's speech to its first audio
    sent), people joining and leaving, and when the agent will leave an empty call."""

    def __init__(self, stream: TextIO | None = None, *, idle_timeout: float | None = None) -> None:
        self.stream = stream
        self.idle_timeout = idle_timeout
        self._ended: dict[str, AgentTurnEnded] = {}
        self._session: AgentSession | None = None

    def attach(self, session: AgentSession) -> None:
        self._session = session
        session.events.subscribe(self._on_session_event, SessionEvent)
        if session.connection is not None:
            session.connection.events.subscribe(self._on_join, ParticipantJoined)
            session.connection.events.subscribe(self._on_leave, ParticipantLeft)

    def print(self, line: str) -> None:
        out = self.stream or sys.stdout
        out.write(line + "\n")
        out.flush()

    def _on_session_event(self, event: SessionEvent) -> None:
        if isinstance(event, Transcript) and event.role == "user" and event.final:
            self.print(f"you: {event.text.strip()}")
        elif isinstance(event, AgentTurnEnded):
            if not event.text:
                return  # cut off before a word was heard
            # A reply to a turn is followed at once (same call) by its TurnMetricsReady;
            # speech with no turn (a greeting) is not: print it on the next loop pass.
            self._ended[event.speech_id] = event
            asyncio.get_running_loop().call_soon(self._flush, event.speech_id, None)
        elif isinstance(event, TurnMetricsReady):
            self._flush(event.metrics.speech_id, event.metrics.end_to_end)

    def _flush(self, speech_id: str, latency: float | None) -> None:
        ended = self._ended.pop(speech_id, None)
        if ended is None:
            return
        notes = [f"{latency:.2f} s"] if latency is not None else []
        if ended.interrupted:
            notes.append("interrupted")
        label = f"agent ({', '.join(notes)})" if notes else "agent"
        self.print(f"{label}: {ended.text.strip()}")

    def _on_join(self, event: ParticipantJoined) -> None:
        if not event.participant.is_agent:
            self.print(f"-- {_who(event.participant.user)} joined")

    def _on_leave(self, event: ParticipantLeft) -> None:
        if event.participant.is_agent:
            return
        self.print(f"-- {_who(event.participant.user)} left")
        session = self._session
        connection = session.connection if session is not None else None
        if connection is not None and not connection.humans():
            if self.idle_timeout:
                self.print(f"-- no one on the call: leaving in {self.idle_timeout:g} s")
            else:
                self.print("-- no one on the call; staying (idle timeout off)")


def _who(user: object) -> str:
    name = getattr(user, "name", "") or getattr(user, "id", "") or "someone"
    return str(name)


def show_splash(mode: str, *, enabled: bool = True, stream: TextIO | None = None) -> bool:
    """Print the banner when ``enabled`` and the stream is an interactive terminal."""
    out = stream or sys.stdout
    if not enabled or not out.isatty():
        return False
    from parley import __version__

    out.write(_SPLASH.format(version=__version__, mode=mode) + "\n")
    out.flush()
    return True


def base_url(host: str, port: int) -> str:
    """The URL people can open for a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
