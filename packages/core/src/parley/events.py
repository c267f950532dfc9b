"""Typed control events a session publishes on `AgentSession.events`.

Subscribe with ``@session.events.on(UserTranscript)``; `SessionEvent` catches them all.
Media never travels as events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from parley.metrics import TurnMetrics


class SessionState(StrEnum):
    STARTING = "starting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Base of every session event."""


@dataclass(frozen=True, slots=True)
class StateChanged(SessionEvent):
    old: SessionState
    new: SessionState


@dataclass(frozen=True, slots=True)
class UserTurnStarted(SessionEvent):
    pass


@dataclass(frozen=True, slots=True)
class UserTurnEnded(SessionEvent):
    text: str


@dataclass(frozen=True, slots=True)
class AgentTurnStarted(SessionEvent):
    speech_id: str


@dataclass(frozen=True, slots=True)
class AgentTurnEnded(SessionEvent):
    speech_id: str
    text: str  # what the user heard
    interrupted: bool


@dataclass(frozen=True, slots=True)
class Transcript(SessionEvent):
    role: Literal["user", "agent"]
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class ToolCalled(SessionEvent):
    name: str
    arguments: str
    result: str
    error: bool
    duration: float


@dataclass(frozen=True, slots=True)
class Interrupted(SessionEvent):
    speech_id: str
    false_interruption: bool  # the agent resumed: the user said nothing meaningful


@dataclass(frozen=True, slots=True)
class ErrorOccurred(SessionEvent):
    source: str  # "stt", "llm", "tts", "realtime", "tool", "edge", "flow"
    error: BaseException
    recoverable: bool


@dataclass(frozen=True, slots=True)
class TurnMetricsReady(SessionEvent):
    metrics: TurnMetrics


@dataclass(frozen=True, slots=True)
class WakeUp(SessionEvent):
    silence: float


@dataclass(frozen=True, slots=True)
class DataMessage(SessionEvent):
    """A data message from a participant that the engine did not consume itself."""

    participant_id: str
    message: dict[str, Any] = field(default_factory=dict)
