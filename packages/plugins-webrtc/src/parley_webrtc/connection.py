"""A call hosted in this process: the agent's `Connection` and every browser peer on it.

Signaling (`parley_webrtc.routes`) adds a peer per browser offer; the engine sees only the
`Connection` contract: participants, audio/video in, one audio output, data, events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import av
import numpy as np
import numpy.typing as npt
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

from parley_webrtc.output import CallAudioOutput
from parley_webrtc.peer import Peer
from parley_webrtc.settings import WebRTCSettings
from parley_webrtc.video_file import VideoFilePlayer

logger = logging.getLogger("parley.webrtc")

# An int16 peak above this (about -30 dBFS) makes a frame count as someone speaking: the
# engine's transcripts do not say whose they are, so the page is told who spoke last.
SPEAKING_PEAK = 1000


class CallFull(RuntimeError):
    """The call already has as many browser participants as it allows."""


class CallEnded(RuntimeError):
    """The agent has left the call."""


class WebRTCConnection(Connection):
    """The agent's side of a call hosted here; also the `PeerOwner` of its browser peers.

    ``on_leave(connection)`` runs first thing in `leave`, so signaling stops finding the call
    (the edge passes its `Rooms.remove`).
    """

    def __init__(
        self,
        call: Call,
        agent_user: User,
        settings: WebRTCSettings,
        on_leave: Callable[[WebRTCConnection], None],
    ) -> None:
        super().__init__(call, agent_user)
        self.settings = settings
        self.max_participants = int(call.options.get("max_participants", settings.max_participants))
        self._on_leave = on_leave
        self._output = CallAudioOutput(
            max_buffered=settings.max_buffered,
            bitrate=settings.opus_bitrate,
            complexity=settings.opus_complexity,
        )
        self._audio: asyncio.Queue[tuple[Participant, AudioFrame] | None] = asyncio.Queue(
            settings.input_queue_frames
        )
        self.audio_frames_dropped = 0
        self._video: dict[str, tuple[Participant, av.VideoFrame]] = {}
        self._video_ready = asyncio.Event()
        self.video_override: str | None = (
            call.options.get("video_track_override") or settings.video_track_override
        )
        self.video_player: VideoFilePlayer | None = None
        self._peers: dict[str, Peer] = {}
        self._speaker: Participant | None = None  # the participant heard speaking last
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()
        self._leaving = False
        self.participants[agent_user.id] = Participant(agent_user.id, agent_user, is_agent=True)
        self._watchdog = asyncio.ensure_future(self._watch_liveness())

    # --- Connection ---------------------------------------------------------------------------

    @property
    def audio_output(self) -> AudioOutput:
        return self._output

    @property
    def output(self) -> CallAudioOutput:
        return self._output

    async def audio_input(self) -> AsyncIterator[tuple[Participant, AudioFrame]]:
        """48 kHz mono int16 frames of 20 ms from every participant (one reader per call)."""
        queue = self._audio
        while (item := await queue.get()) is not None:
            yield item
        queue.put_nowait(None)  # let a second reader end too

    async def video_input(self) -> AsyncIterator[tuple[Participant, VideoFrame]]:
        """The newest frame of each participant's camera as RGB; older ones are dropped."""
        while not self._closed.is_set():
            await self._video_ready.wait()
            self._video_ready.clear()
            frames, self._video = self._video, {}
            for participant, frame in frames.values():
                image = cast(npt.NDArray[np.uint8], frame.to_ndarray(format="rgb24"))
                yield participant, VideoFrame(image, timestamp=float(frame.time or 0.0))

    async def send_data(self, message: dict[str, Any], to: str | None = None) -> None:
        """Send a JSON message over the data channel (queued until the channel opens)."""
        if to is not None and to not in self._peers:
            raise KeyError(f"no participant {to!r} on call {self.call.call_id!r}")
        text = json.dumps(self.annotate(message), separators=(",", ":"))
        for peer in [self._peers[to]] if to is not None else list(self._peers.values()):
            peer.send(text)

    def annotate(self, message: dict[str, Any]) -> dict[str, Any]:
        """Add what only this edge knows to the engine's transcripts, for the demo page.

        A user's transcript gets the speaker (``participant_id``, ``name``: whoever was heard
        last). An agent's gets ``playout_ms``, how much of its audio is still queued to play
        (its words end that much later), and a final one ``interrupted`` when barge-in cut
        the audio off.
        """
        if message.get("type") != "transcript":
            return message
        if message.get("role") == "user":
            speaker = self._speaker
            if speaker is None or "participant_id" in message:
                return message
            return {**message, "participant_id": speaker.id, "name": speaker.user.name}
        extra: dict[str, Any] = {"playout_ms": round(self._output.buffered * 1000)}
        if message.get("final") is not False:
            extra["interrupted"] = self._output.cut_off
        return {**message, **extra}

    async def leave(self) -> None:
        if self._leaving:
            await self._closed.wait()
            return
        self._leaving = True
        self._on_leave(self)
        self._watchdog.cancel()
        if self.video_player is not None:
            await self.video_player.stop()
        await self.send_data({"type": "bye", "reason": "the agent left the call"})
        for peer_id in list(self._peers):
            await self.remove_participant(peer_id, "the agent left the call")
        self._output.close()
        while not self._audio.empty():
            self._audio.get_nowait()
        self._audio.put_nowait(None)
        self._closed.set()
        self._video_ready.set()
        self.events.emit(ConnectionClosed("left"))
        await asyncio.gather(self._watchdog, *self._tasks, return_exceptions=True)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- signaling (used by the routes) -------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._leaving

    @property
    def peers(self) -> dict[str, Peer]:
        return dict(self._peers)

    async def accept_offer(self, sdp: str, user: User | None = None) -> tuple[Participant, str]:
        """Open a peer connection for a new browser participant; returns it and the answer SDP.

        Raises `CallEnded`, `CallFull`, or `peer.InvalidOffer` (bad SDP).
        """
        if self._leaving:
            raise CallEnded(f"the agent has left call {self.call.call_id!r}")
        if len(self._peers) >= self.max_participants:
            raise CallFull(
                f"call {self.call.call_id!r} already has {len(self._peers)} participant(s), "
                f"its limit; try again when someone leaves"
            )
        participant_id = uuid.uuid4().hex[:12]
        user = user or User(name="Guest", id=participant_id)
        participant = Participant(participant_id, user, metadata={"edge": "webrtc"})
        peer = Peer(self, participant, self.settings.ice_servers)
        self._peers[participant_id] = peer  # hold the slot while ICE gathers
        try:
            answer = await peer.answer(sdp)
        except BaseException:
            await self.remove_participant(participant_id, "offer rejected")
            raise
        return participant, answer

    def peer(self, participant_id: str) -> Peer | None:
        return self._peers.get(participant_id)

    async def remove_participant(self, participant_id: str, reason: str) -> bool:
        """Close a participant's peer connection; publishes ParticipantLeft if it had joined."""
        peer = self._peers.pop(participant_id, None)
        if peer is None:
            return False
        logger.info("participant %s left call %s: %s", participant_id, self.call.call_id, reason)
        await peer.close()
        if self.participants.pop(participant_id, None) is not None:
            self.events.emit(ParticipantLeft(peer.participant))
        return True

    # --- PeerOwner: called by peers --------------------------------------------------------------

    def peer_connected(self, peer: Peer) -> None:
        if self._peers.get(peer.id) is not peer:
            return
        self.participants[peer.id] = peer.participant
        self.events.emit(ParticipantJoined(peer.participant))
        if self.video_override is not None and self.video_player is None:
            self.video_player = VideoFilePlayer(self.video_override, self._put_override_frame)
            self.video_player.start()

    def peer_gone(self, peer: Peer, reason: str) -> None:
        if self._peers.get(peer.id) is peer:
            self._spawn(self.remove_participant(peer.id, reason))

    def audio_received(self, participant: Participant, frame: AudioFrame) -> None:
        if participant is not self._speaker:
            data = frame.data  # two reductions, no copy: cheap enough for every frame
            if data.max() > SPEAKING_PEAK or data.min() < -SPEAKING_PEAK:
                self._speaker = participant
        queue = self._audio
        if queue.full():  # nobody reads fast enough: keep the newest audio
            queue.get_nowait()
            self.audio_frames_dropped += 1
            if self.audio_frames_dropped == 1:
                logger.warning(
                    "call %s: audio_input() is not read fast enough; dropping old frames",
                    self.call.call_id,
                )
        queue.put_nowait((participant, frame))

    def video_received(self, participant: Participant, frame: av.VideoFrame) -> None:
        self._video[participant.id] = (participant, frame)
        self._video_ready.set()

    def _put_override_frame(self, frame: av.VideoFrame) -> None:
        """The override file plays as the video of the first participant still here."""
        humans = self.humans()
        if humans:
            self.video_received(humans[0], frame)

    def data_received(self, participant: Participant, message: dict[str, Any]) -> None:
        self.events.emit(DataReceived(participant, message))

    # --- liveness -----------------------------------------------------------------------------

    async def _watch_liveness(self) -> None:
        """Drop peers that never connect or that stop sending anything (closed tab, lost net)."""
        settings = self.settings
        interval = min(1.0, settings.liveness_timeout / 4, settings.connect_timeout / 4)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for peer in list(self._peers.values()):
                if not peer.connected and now - peer.created > settings.connect_timeout:
                    reason = f"not connected after {settings.connect_timeout:g} s"
                elif peer.connected and now - peer.last_seen > settings.liveness_timeout:
                    reason = f"no audio or data for {settings.liveness_timeout:g} s"
                else:
                    continue
                await self.remove_participant(peer.id, reason)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
