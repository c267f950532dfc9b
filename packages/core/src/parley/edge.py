"""Edge (transport) contract: create a call, join it, and exchange media and data on it.

An Edge is what puts an agent on a call: a local WebRTC peer, a vendor SFU, a phone line, or
the in-memory edge of the testing kit. The engine talks only to `Connection`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from parley.bus import EventBus
from parley.frames import AudioFrame, VideoFrame


@dataclass(frozen=True, slots=True)
class User:
    name: str = "Assistant"
    id: str = "agent"
    image: str | None = None


@dataclass(slots=True)
class Participant:
    id: str
    user: User
    is_agent: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Call:
    call_type: str
    call_id: str
    edge: Edge
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def cid(self) -> str:
        return f"{self.call_type}:{self.call_id}"


@dataclass(frozen=True, slots=True)
class EdgeCapabilities:
    audio_in: bool = True
    audio_out: bool = True
    video_in: bool = False
    data: bool = True
    output_sample_rate: int = 48000


# --- connection events (published on `Connection.events`) ------------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    participant: Participant


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    participant: Participant


@dataclass(frozen=True, slots=True)
class DataReceived:
    participant: Participant
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    reason: str = ""


class AudioOutput(ABC):
    """Where the agent's speech goes. Writes apply back-pressure at real-time pace."""

    sample_rate: int = 48000
    channels: int = 1

    @abstractmethod
    async def write(self, frame: AudioFrame) -> None:
        """Queue a frame (at `sample_rate`/`channels`); waits while the buffer is full."""

    @abstractmethod
    def flush(self) -> float:
        """Drop everything not yet played, at once (barge-in). Returns seconds dropped.

        This includes the frame of a `write` that is waiting for buffer space: that write
        returns without queuing it, so no audio written before a flush is heard after it.
        """

    @abstractmethod
    async def wait_for_playout(self) -> None:
        """Return when all written audio has been sent to the participants."""

    @property
    @abstractmethod
    def buffered(self) -> float:
        """Seconds of audio written but not yet played."""


class Connection(ABC):
    """The agent's presence on one call."""

    def __init__(self, call: Call, agent_user: User) -> None:
        self.call = call
        self.agent_user = agent_user
        self.events = EventBus()
        self.participants: dict[str, Participant] = {}

    @property
    @abstractmethod
    def audio_output(self) -> AudioOutput: ...

    @abstractmethod
    def audio_input(self) -> AsyncIterator[tuple[Participant, AudioFrame]]:
        """Every participant's audio as it arrives. Ends when the connection closes."""

    def video_input(self) -> AsyncIterator[tuple[Participant, VideoFrame]]:
        """Incoming video; an edge keeps only the latest frame when the reader lags."""
        return _empty()

    @abstractmethod
    async def send_data(self, message: dict[str, Any], to: str | None = None) -> None:
        """Send a JSON-able message to one participant (``to``) or to all."""

    @abstractmethod
    async def leave(self) -> None:
        """Leave the call and release transport resources. Idempotent."""

    @abstractmethod
    async def wait_closed(self) -> None:
        """Return when the connection is closed (left, or ended by the other side)."""

    def humans(self) -> list[Participant]:
        return [p for p in self.participants.values() if not p.is_agent]


class Edge(ABC):
    capabilities: EdgeCapabilities = EdgeCapabilities()

    async def create_call(self, call_type: str, call_id: str, **options: Any) -> Call:
        """Create (or look up) a call. Edges without call setup just describe it."""
        return Call(call_type, call_id, self, dict(options))

    @abstractmethod
    async def join(self, call: Call, agent_user: User) -> Connection:
        """Put the agent on ``call``."""

    async def aclose(self) -> None:
        """Release shared transport resources."""


async def _empty() -> AsyncIterator[Any]:
    return
    yield  # pragma: no cover
