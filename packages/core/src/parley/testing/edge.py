"""In-memory edge: puts an agent on a call that lives inside the test.

The test plays the other participants::

    edge = InMemoryEdge()
    ...                                   # the agent joins "demo" through the edge
    conn = await edge.wait_for_connection("demo")
    await conn.push_speech(0.8)           # the default user speaks for 0.8 s
    await conn.push_silence(0.5)
    await conn.send_text("hello")         # a typed message
    await conn.audio_output.wait_for_audio()
    assert conn.sent_data[0].message == {...}

When the agent joins, the humans in ``users`` are already on the call (no join events for them);
`InMemoryConnection.add_participant` and `remove_participant` publish ParticipantJoined/Left.
"""

from __future__ import annotations

import asyncio
import json
import time
from array import array
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from parley.edge import (
    Call,
    Connection,
    ConnectionClosed,
    DataReceived,
    Edge,
    EdgeCapabilities,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    User,
)
from parley.frames import AudioFrame, VideoFrame
from parley.testing._waiters import Waiters
from parley.testing.output import InMemoryAudioOutput
from parley.testing.signals import (
    FRAME_DURATION,
    SPEECH_AMPLITUDE,
    SPEECH_FREQUENCY,
    silence_frames,
    tone_frames,
)

DEFAULT_USER = User(name="User", id="user")

_InputItem = tuple[Participant, AudioFrame, float] | None


@dataclass(frozen=True, slots=True)
class SentData:
    """A message the agent sent (decoded from JSON, as a participant would receive it)."""

    message: dict[str, Any]
    to: str | None
    at: float  # time.perf_counter()


class InMemoryConnection(Connection):
    """The agent's side implements `Connection`; the rest of the methods are for the test."""

    def __init__(self, call: Call, agent_user: User, edge: InMemoryEdge) -> None:
        super().__init__(call, agent_user)
        self.edge = edge
        self.input_sample_rate = edge.input_sample_rate
        self._output = InMemoryAudioOutput(
            edge.output_sample_rate,
            realtime=edge.realtime_playout,
            max_buffer=edge.max_buffer,
            record_frames=edge.record_frames,
        )
        self.sent_data: list[SentData] = []
        self.close_reason: str | None = None
        # delay from each frame being due to the agent reading it, when measured
        self.input_lateness: array[float] | None = array("d") if edge.measure_input else None
        self.frames_pushed = 0
        self._input: asyncio.Queue[_InputItem] = asyncio.Queue(edge.input_queue_frames)
        self._clocks: dict[str, float] = {}  # per-participant stream time of pushed audio
        self._video: tuple[Participant, VideoFrame] | None = None
        self._video_ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._data: Waiters[SentData] = Waiters()
        self._loop = asyncio.get_running_loop()
        self.participants[agent_user.id] = Participant(agent_user.id, agent_user, is_agent=True)
        for user in edge.users:
            self.participants[user.id] = Participant(user.id, user)

    # --- the Connection contract ----------------------------------------------------------

    @property
    def audio_output(self) -> InMemoryAudioOutput:
        return self._output

    def audio_input(self) -> AsyncIterator[tuple[Participant, AudioFrame]]:
        return self._audio_input()

    async def _audio_input(self) -> AsyncIterator[tuple[Participant, AudioFrame]]:
        while not self._closed.is_set():
            item = await self._input.get()
            if item is None or self._closed.is_set():
                return
            participant, frame, due = item
            if self.input_lateness is not None:
                self.input_lateness.append(time.perf_counter() - due)
            yield participant, frame

    def video_input(self) -> AsyncIterator[tuple[Participant, VideoFrame]]:
        return self._video_input()

    async def _video_input(self) -> AsyncIterator[tuple[Participant, VideoFrame]]:
        while not self._closed.is_set():
            await self._video_ready.wait()
            self._video_ready.clear()
            if self._closed.is_set() or self._video is None:
                return
            latest, self._video = self._video, None
            yield latest

    async def send_data(self, message: dict[str, Any], to: str | None = None) -> None:
        if self._closed.is_set():
            raise ConnectionError(f"cannot send data: the connection to {self.call.cid} closed")
        if to is not None and to not in self.participants:
            raise ValueError(f"cannot send data to {to!r}: no such participant on {self.call.cid}")
        try:
            decoded = json.loads(json.dumps(message))  # a real transport sends JSON
        except (TypeError, ValueError) as error:
            raise TypeError(f"data messages must be JSON-serializable: {error}") from error
        sent = SentData(decoded, to, time.perf_counter())
        self.sent_data.append(sent)
        if self._data:
            self._data.notify(sent)

    async def leave(self) -> None:
        await self._close("left")

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- test side: people ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def add_participant(
        self, user: User, metadata: dict[str, Any] | None = None
    ) -> Participant:
        """A human joins the call (publishes `ParticipantJoined`)."""
        self._check_open()
        if user.id in self.participants:
            raise ValueError(f"participant {user.id!r} is already on {self.call.cid}")
        participant = Participant(user.id, user, metadata=dict(metadata or {}))
        self.participants[user.id] = participant
        self.events.emit(ParticipantJoined(participant))
        await asyncio.sleep(0)  # let async handlers start
        return participant

    async def remove_participant(self, participant_id: str) -> Participant:
        """A human leaves the call (publishes `ParticipantLeft`)."""
        self._check_open()
        participant = self._participant(participant_id)
        del self.participants[participant_id]
        self._clocks.pop(participant_id, None)
        self.events.emit(ParticipantLeft(participant))
        await asyncio.sleep(0)
        return participant

    async def send_text(self, text: str, participant_id: str | None = None) -> None:
        """A participant types ``text`` (a `DataReceived` with ``{"type": "text", ...}``)."""
        await self.send_message({"type": "text", "text": text}, participant_id)

    async def send_message(
        self, message: dict[str, Any], participant_id: str | None = None
    ) -> None:
        """A participant sends any data message (published as `DataReceived`)."""
        self._check_open()
        self.events.emit(DataReceived(self._participant(participant_id), dict(message)))
        await asyncio.sleep(0)

    async def close(self, reason: str = "closed by the remote side") -> None:
        """End the call from the other side."""
        await self._close(reason)

    # --- test side: media -----------------------------------------------------------------

    async def push_audio(
        self, frame: AudioFrame, participant_id: str | None = None, *, due: float | None = None
    ) -> None:
        """Deliver one frame from a participant (default: the first human). Waits while the
        agent lags ``input_queue_frames`` behind. ``due`` (``time.perf_counter()``) is when
        the frame should have arrived, for ``input_lateness``; it defaults to now."""
        participant = self._participant(participant_id)
        if self._closed.is_set():
            return
        self.frames_pushed += 1
        await self._input.put((participant, frame, time.perf_counter() if due is None else due))

    async def push_frames(
        self,
        frames: Iterable[AudioFrame],
        participant_id: str | None = None,
        *,
        realtime: bool = False,
    ) -> None:
        """Deliver frames in order: as fast as the agent takes them, or in real time (each
        frame arrives when its audio has been "captured", i.e. at the end of its span)."""
        participant = self._participant(participant_id)
        start = time.perf_counter()
        elapsed = 0.0
        for frame in frames:
            if self._closed.is_set():
                return
            elapsed += frame.duration
            due = start + elapsed
            if realtime:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.push_audio(frame, participant.id, due=due if realtime else None)

    async def push_speech(
        self,
        seconds: float,
        participant_id: str | None = None,
        *,
        realtime: bool = False,
        frequency: int = SPEECH_FREQUENCY,
        amplitude: float = SPEECH_AMPLITUDE,
        frame_duration: float = FRAME_DURATION,
    ) -> None:
        """A participant speaks for ``seconds``: a steady tone every fake detector hears."""
        participant = self._participant(participant_id)
        frames = tone_frames(
            seconds,
            self.input_sample_rate,
            frequency=frequency,
            amplitude=amplitude,
            frame_duration=frame_duration,
            start=self._clocks.get(participant.id, 0.0),
        )
        await self._push_timed(frames, participant, realtime)

    async def push_silence(
        self,
        seconds: float,
        participant_id: str | None = None,
        *,
        realtime: bool = False,
        frame_duration: float = FRAME_DURATION,
    ) -> None:
        """A participant is silent for ``seconds`` (digital silence, still sent as frames)."""
        participant = self._participant(participant_id)
        frames = silence_frames(
            seconds,
            self.input_sample_rate,
            frame_duration=frame_duration,
            start=self._clocks.get(participant.id, 0.0),
        )
        await self._push_timed(frames, participant, realtime)

    async def _push_timed(
        self, frames: Iterable[AudioFrame], participant: Participant, realtime: bool
    ) -> None:
        def advance(frame: AudioFrame) -> AudioFrame:
            self._clocks[participant.id] = frame.timestamp + frame.duration
            return frame

        await self.push_frames(map(advance, frames), participant.id, realtime=realtime)

    async def push_video(self, frame: VideoFrame, participant_id: str | None = None) -> None:
        """Deliver a video frame; an unread earlier frame is replaced (latest wins)."""
        participant = self._participant(participant_id)
        if self._closed.is_set():
            return
        self._video = (participant, frame)
        self._video_ready.set()

    # --- test side: what the agent sent ---------------------------------------------------

    def messages(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Data messages the agent sent, optionally only those whose ``"type"`` is ``kind``."""
        return [s.message for s in self.sent_data if kind in (None, s.message.get("type"))]

    async def wait_for_data(
        self,
        match: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float | None = 10.0,
    ) -> SentData:
        """The first message the agent sent (or sends) that ``match`` accepts."""
        accept: Callable[[SentData], bool] = (
            (lambda sent: True) if match is None else (lambda sent: match(sent.message))
        )
        for sent in self.sent_data:
            if accept(sent):
                return sent
        self._check_open()
        return await self._data.wait(accept, timeout, "a data message from the agent")

    # --- internals ------------------------------------------------------------------------

    def _participant(self, participant_id: str | None) -> Participant:
        if participant_id is None:
            humans = self.humans()
            if not humans:
                raise ValueError(
                    f"no human participant on {self.call.cid}; add one with add_participant()"
                )
            return humans[0]
        try:
            return self.participants[participant_id]
        except KeyError:
            known = ", ".join(sorted(self.participants)) or "none"
            raise ValueError(
                f"no participant {participant_id!r} on {self.call.cid} (present: {known})"
            ) from None

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise ConnectionError(f"the connection to {self.call.cid} is closed")

    async def _close(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        # End the readers: drop undelivered input and leave room for the end marker.
        while not self._input.empty():
            self._input.get_nowait()
        self._input.put_nowait(None)
        self._video_ready.set()
        self._data.fail(ConnectionError(f"the connection to {self.call.cid} closed"))
        self.edge._forget(self)
        self.events.emit(ConnectionClosed(reason))
        await self._output.aclose()


class InMemoryEdge(Edge):
    """An edge whose calls live in this process; see the module docstring.

    ``realtime_playout`` plays the agent's audio at real-time pace (with ``max_buffer``
    seconds of back-pressure) or instantly; ``record_frames=False`` keeps only counters and
    write times (for long benchmarks); ``measure_input=True`` records ``input_lateness``.
    """

    capabilities = EdgeCapabilities(video_in=True, output_sample_rate=24000)

    # Open connections of every in-memory edge, so a test can reach an agent whose edge was
    # built from a spec string (see `wait_for_any_connection`).
    _open: ClassVar[dict[str, InMemoryConnection]] = {}
    _any_joined: ClassVar[Waiters[InMemoryConnection]] = Waiters()

    def __init__(
        self,
        *,
        users: Sequence[User] = (DEFAULT_USER,),
        input_sample_rate: int = 16000,
        output_sample_rate: int = 24000,
        realtime_playout: bool = True,
        max_buffer: float = 1.0,
        record_frames: bool = True,
        input_queue_frames: int = 500,
        measure_input: bool = False,
    ) -> None:
        self.users = tuple(users)
        self.input_sample_rate = int(input_sample_rate)
        self.output_sample_rate = int(output_sample_rate)
        self.realtime_playout = realtime_playout
        self.max_buffer = float(max_buffer)
        self.record_frames = record_frames
        self.input_queue_frames = int(input_queue_frames)
        self.measure_input = measure_input
        self.capabilities = EdgeCapabilities(
            video_in=True, output_sample_rate=self.output_sample_rate
        )
        self.connections: dict[str, InMemoryConnection] = {}  # by call id, kept after close
        self.joined: list[InMemoryConnection] = []  # every connection, in join order
        self.closed = False
        self._joins: Waiters[InMemoryConnection] = Waiters()

    async def join(self, call: Call, agent_user: User) -> InMemoryConnection:
        if self.closed:
            raise ConnectionError("this InMemoryEdge was closed; create a new one")
        connection = InMemoryConnection(call, agent_user, self)
        self.connections[call.call_id] = connection
        self.joined.append(connection)
        InMemoryEdge._open[call.call_id] = connection
        self._joins.notify(connection)
        InMemoryEdge._any_joined.notify(connection)
        return connection

    async def wait_for_connection(
        self,
        call_id: str | None = None,
        timeout: float | None = 10.0,
    ) -> InMemoryConnection:
        """The open connection to ``call_id`` (any call if None), waiting for the agent."""
        for connection in reversed(self.joined):
            if not connection.closed and call_id in (None, connection.call.call_id):
                return connection
        what = f"an agent to join call {call_id!r}" if call_id else "an agent to join a call"
        return await self._joins.wait(lambda c: call_id in (None, c.call.call_id), timeout, what)

    @classmethod
    async def wait_for_any_connection(
        cls,
        call_id: str | None = None,
        timeout: float | None = 10.0,
    ) -> InMemoryConnection:
        """Like `wait_for_connection`, across every in-memory edge in the process: for agents
        whose edge the test did not build itself (spec string ``"memory"``, `RoomOptions`)."""
        loop = asyncio.get_running_loop()
        for connection in reversed(list(cls._open.values())):
            # Connections left open by an earlier test live on a loop that is gone.
            if connection._loop is loop and call_id in (None, connection.call.call_id):
                return connection
        what = f"an agent to join call {call_id!r}" if call_id else "an agent to join a call"
        return await cls._any_joined.wait(
            lambda c: call_id in (None, c.call.call_id), timeout, what
        )

    def _forget(self, connection: InMemoryConnection) -> None:
        if InMemoryEdge._open.get(connection.call.call_id) is connection:
            del InMemoryEdge._open[connection.call.call_id]

    async def aclose(self) -> None:
        """Close every connection this edge opened."""
        self.closed = True
        for connection in self.joined:
            await connection.close("the edge closed")
