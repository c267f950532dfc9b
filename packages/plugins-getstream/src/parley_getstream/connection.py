"""The agent's presence on a Stream call: the SDK's joined call seen through Parley's `Connection`.

SDK events become Parley's: sessions joining and leaving are `ParticipantJoined`/`Left`
(keyed by Stream session id), decoded remote audio feeds `audio_input`, remote camera tracks
feed `video_input` (when the edge subscribes to video), custom events from participants are
`DataReceived`, and the end of the call is `ConnectionClosed`. The agent speaks through one
published `AudioStreamTrack` (`StreamAudioOutput`); `send_data` sends a custom event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import numpy as np
from parley.edge import (
    AudioOutput,
    Call,
    Connection,
    ConnectionClosed,
    DataReceived,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    User,
)
from parley.frames import AudioFrame, VideoFrame

from parley_getstream.output import PcmSink, StreamAudioOutput
from parley_getstream.sdk import CallConnection, sdk_audio_track, to_participant

logger = logging.getLogger("parley.getstream")

# Stream's clock for video RTP timestamps.
VIDEO_CLOCK = 90_000


class StreamConnection(Connection):
    """One agent on one Stream call. Built by `StreamEdge.join`, which then calls `start`."""

    def __init__(
        self,
        call: Call,
        agent_user: User,
        rtc: CallConnection,
        stream_call: Any,
        *,
        track: PcmSink | None = None,
        max_buffered: float = 1.0,
        input_queue_frames: int = 100,
        on_close: Callable[[StreamConnection], None] | None = None,
    ) -> None:
        super().__init__(call, agent_user)
        self.rtc = rtc
        self.stream_call = stream_call  # the SDK's call, for custom events
        self.track: Any = track if track is not None else sdk_audio_track()
        self._output = StreamAudioOutput(self.track, max_buffered=max_buffered)
        self._on_close = on_close
        self._audio: asyncio.Queue[tuple[Participant, AudioFrame] | None] = asyncio.Queue(
            input_queue_frames
        )
        self.audio_frames_dropped = 0
        self._video: dict[str, tuple[Participant, Any]] = {}
        self._video_ready = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()
        self._closing = False
        self.close_reason: str | None = None
        self.participants[agent_user.id] = Participant(agent_user.id, agent_user, is_agent=True)
        for event, handler in (
            ("participant_joined", self._on_participant_joined),
            ("participant_left", self._on_participant_left),
            ("audio", self._on_audio),
            ("track_added", self._on_track_added),
            ("custom", self._on_custom),
            ("call_ended", self._on_call_ended),
            ("connection.state_changed", self._on_state_changed),
        ):
            rtc.on(event, handler)

    async def start(self) -> None:
        """Join the call, take in who is already there, and publish the agent's voice."""
        joined = False
        try:
            await self.rtc.connect()  # on failure the SDK has left the call already
            joined = True
            self._sync_participants()
            await self.rtc.add_tracks(audio=self.track)
        except BaseException:
            await self._close("could not join the call", leave_sdk=joined)
            raise

    # --- Connection ---------------------------------------------------------------------------

    @property
    def audio_output(self) -> AudioOutput:
        return self._output

    @property
    def output(self) -> StreamAudioOutput:
        return self._output

    async def audio_input(self) -> AsyncIterator[tuple[Participant, AudioFrame]]:
        """Every participant's decoded audio as the SDK delivers it (48 kHz int16)."""
        queue = self._audio
        while (item := await queue.get()) is not None:
            yield item
        queue.put_nowait(None)  # let a second reader end too

    async def video_input(self) -> AsyncIterator[tuple[Participant, VideoFrame]]:
        """The newest camera frame of each participant as RGB; older ones are dropped.
        Only with ``getstream.Edge(video=True)``: otherwise the SFU sends no video."""
        while not self._closed.is_set():
            await self._video_ready.wait()
            self._video_ready.clear()
            frames, self._video = self._video, {}
            for participant, frame in frames.values():
                yield participant, _rgb(frame)

    async def send_data(self, message: dict[str, Any], to: str | None = None) -> None:
        """Send ``message`` as a Stream custom event to everyone watching the call.

        Stream delivers a custom event to every participant; with ``to`` (a participant id)
        the event says whom it is for in ``"to"`` (that participant's user id).
        """
        if self._closing:
            raise ConnectionError(f"cannot send data: the agent left call {self.call.cid}")
        custom = dict(message)
        if to is not None:
            participant = self.participants.get(to)
            if participant is None:
                raise KeyError(f"no participant {to!r} on call {self.call.cid}")
            custom["to"] = participant.user.id
        await self.stream_call.send_call_event(user_id=self.agent_user.id, custom=custom)

    async def leave(self) -> None:
        await self._close("left")

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def closed(self) -> bool:
        return self._closing

    # --- SDK events ---------------------------------------------------------------------------

    def _on_participant_joined(self, event: Any) -> None:
        self._add(event.participant)

    def _on_participant_left(self, event: Any) -> None:
        self._remove(str(event.participant.session_id))

    def _on_state_changed(self, change: Any) -> None:
        # A reconnect (or a lag in the SDK's event stream) can change who is on the call
        # without join or leave events; the SDK's participant list is then the truth.
        if not self._closing:
            self._sync_participants()

    def _on_audio(self, pcm: Any) -> None:
        if self._closing:
            return
        participant = self._add(pcm.participant) if pcm.participant is not None else None
        if participant is None or participant.is_agent:
            return
        frame = _audio_frame(pcm)
        queue = self._audio
        if queue.full():  # nobody reads fast enough: keep the newest audio
            queue.get_nowait()
            self.audio_frames_dropped += 1
            if self.audio_frames_dropped == 1:
                logger.warning(
                    "call %s: audio_input() is not read fast enough; dropping old frames",
                    self.call.cid,
                )
        queue.put_nowait((participant, frame))

    def _on_track_added(self, track: Any) -> None:
        if self._closing or not _is_video(track):
            return  # the SDK reads audio tracks itself
        participant = self._add(track.participant)
        if participant is not None and not participant.is_agent:
            self._spawn(self._read_video(participant, track))

    def _on_custom(self, data: dict[str, Any]) -> None:
        user = data.get("user") or {}
        user_id = str(user.get("id", ""))
        custom = data.get("custom")
        if self._closing or user_id == self.agent_user.id or not isinstance(custom, dict):
            return  # our own events come back to us too
        participant = next((p for p in self.humans() if p.user.id == user_id), None)
        if participant is None:  # someone watching the call without being on it
            name = str(user.get("name") or user_id)
            participant = Participant(user_id, User(name=name, id=user_id), metadata=user)
        self.events.emit(DataReceived(participant, dict(custom)))

    def _on_call_ended(self, event: Any) -> None:
        if not self._closing:
            self._spawn(self._close("the call ended"))

    # --- participants -------------------------------------------------------------------------

    def _add(self, remote: Any) -> Participant | None:
        """The participant for an SDK participant, published as joined the first time."""
        participant = to_participant(remote, self.agent_user.id)
        if participant.is_agent:
            return self.participants[self.agent_user.id]
        known = self.participants.get(participant.id)
        if known is not None or self._closing:
            return known
        self.participants[participant.id] = participant
        logger.info(
            "participant %s (%s) joined call %s", participant.id, participant.user.id, self.call.cid
        )
        self.events.emit(ParticipantJoined(participant))
        return participant

    def _remove(self, participant_id: str) -> None:
        participant = self.participants.get(participant_id)
        if participant is None or participant.is_agent:
            return
        del self.participants[participant_id]
        self._video.pop(participant_id, None)
        logger.info("participant %s left call %s", participant_id, self.call.cid)
        self.events.emit(ParticipantLeft(participant))

    def _sync_participants(self) -> None:
        present: set[str] = set()
        for remote in self.rtc.participants_state.get_participants():
            participant = self._add(remote)
            if participant is not None:
                present.add(participant.id)
        for participant in self.humans():
            if participant.id not in present:
                self._remove(participant.id)

    # --- video --------------------------------------------------------------------------------

    async def _read_video(self, participant: Participant, track: Any) -> None:
        async for frame in track.video_frames():
            if self._closing:
                return
            if participant.id in self.participants:
                self._video[participant.id] = (participant, frame)
                self._video_ready.set()

    # --- closing ------------------------------------------------------------------------------

    async def _close(self, reason: str, *, leave_sdk: bool = True) -> None:
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        if self._on_close is not None:
            self._on_close(self)
        self._output.close()
        stop = getattr(self.track, "stop", None)
        if stop is not None:
            stop()
        if leave_sdk:
            try:
                await self.rtc.leave()
            except Exception:
                logger.exception("leaving call %s failed", self.call.cid)
        self.rtc.remove_all_listeners()
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not self._audio.empty():
            self._audio.get_nowait()
        self._audio.put_nowait(None)
        self._closed.set()
        self._video_ready.set()
        self.events.emit(ConnectionClosed(reason))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _audio_frame(pcm: Any) -> AudioFrame:
    """The SDK's `PcmData` as an `AudioFrame`: int16, shaped (samples, channels)."""
    samples = np.asarray(pcm.samples)
    channels = max(1, int(pcm.channels or 1))
    if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    if samples.ndim == 2 and samples.shape[0] == channels and channels > 1:
        samples = samples.T  # planar (channels, samples)
    return AudioFrame(samples.reshape(-1, channels), int(pcm.sample_rate))


def _is_video(track: Any) -> bool:
    import getstream_rtc

    return bool(track.track_type == getstream_rtc.TrackType.VIDEO)


def _rgb(frame: Any) -> VideoFrame:
    """A decoded SDK frame (packed I420) as an RGB `VideoFrame`."""
    import av

    width, height = int(frame.width), int(frame.height)
    planes = np.asarray(frame.data, dtype=np.uint8).reshape(height * 3 // 2, width)
    decoded = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    image = cast("np.ndarray[Any, np.dtype[np.uint8]]", decoded.to_ndarray(format="rgb24"))
    return VideoFrame(image, timestamp=int(frame.rtp_timestamp) / VIDEO_CLOCK)
