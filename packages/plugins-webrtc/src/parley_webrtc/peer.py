"""One browser participant's peer connection with the agent.

A `Peer` owns the `RTCPeerConnection`, drains the participant's tracks into the call, carries
the data channel both ways, and tells the call when the connection comes up or goes away. It
knows the call only as a `PeerOwner` (the `WebRTCConnection` is one).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol, cast

import av
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from parley.edge import Participant
from parley.frames import AudioFrame

from parley_webrtc import inline_decode
from parley_webrtc.output import CallAudioOutput, OutboundAudioTrack

logger = logging.getLogger("parley.webrtc")

CHANNEL_LABEL = "parley"
MAX_OUTBOX = 256  # messages kept for a data channel that is not open yet


class InvalidOffer(ValueError):
    """The browser's SDP offer could not be applied."""


class PeerOwner(Protocol):
    """The call a `Peer` belongs to, as the peer sees it."""

    @property
    def video_override(self) -> str | None:
        """A local video file that replaces the participants' cameras, if any."""

    @property
    def output(self) -> CallAudioOutput:
        """The agent's audio, which every peer sends."""

    def peer_connected(self, peer: Peer) -> None: ...

    def peer_gone(self, peer: Peer, reason: str) -> None: ...

    def audio_received(self, participant: Participant, frame: AudioFrame) -> None: ...

    def video_received(self, participant: Participant, frame: av.VideoFrame) -> None: ...

    def data_received(self, participant: Participant, message: dict[str, Any]) -> None: ...


class Peer:
    def __init__(
        self, owner: PeerOwner, participant: Participant, ice_servers: tuple[str, ...]
    ) -> None:
        self.owner = owner
        self.participant = participant
        configuration = RTCConfiguration(iceServers=[RTCIceServer(url) for url in ice_servers])
        self.pc = RTCPeerConnection(configuration)
        self.audio_track: OutboundAudioTrack | None = None
        self.channel: RTCDataChannel | None = None
        self.connected = False
        self.inline_audio = False  # received audio decoded on the loop (see inline_decode)
        self._loop = asyncio.get_running_loop()
        self.created = self._loop.time()
        self.last_seen = self.created
        self._outbox: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_state)

    @property
    def id(self) -> str:
        return self.participant.id

    async def answer(self, offer_sdp: str) -> str:
        """Apply the offer, attach the call's audio, gather ICE, and return the answer SDP."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError, AssertionError…
            raise InvalidOffer(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        if self.owner.video_override is not None:
            # A local file plays as this participant's video: ask the browser not to send its
            # camera at all (nothing to decode, nothing to drop).
            for transceiver in self.pc.getTransceivers():
                if transceiver.kind == "video":
                    transceiver.direction = "inactive"
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        for transceiver in audio:
            if inline_decode.install(transceiver.receiver, self._on_audio_frame):
                self.inline_audio = True
        if audio:
            self.audio_track = OutboundAudioTrack(self.owner.output)
            self.pc.addTrack(self.audio_track)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def add_candidate(
        self, candidate: str | None, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        """Add a trickled remote ICE candidate (``None`` or empty: end of candidates)."""
        if not candidate:
            await self.pc.addIceCandidate(None)
            return
        try:
            parsed = candidate_from_sdp(candidate.removeprefix("candidate:"))
        except (AssertionError, ValueError, IndexError) as exc:
            raise ValueError(f"malformed ICE candidate {candidate!r}") from exc
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        await self.pc.addIceCandidate(parsed)

    def send(self, text: str) -> None:
        channel = self.channel
        if channel is not None and channel.readyState == "open":
            channel.send(text)
        elif len(self._outbox) < MAX_OUTBOX:
            self._outbox.append(text)
        else:
            logger.warning("data channel to %s not open; dropping a message", self.id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self.audio_track is not None:
            self.audio_track.stop()
        await self.pc.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- aiortc callbacks ---------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and not self.inline_audio:
            self._spawn(self._read_audio(track))
        elif track.kind == "video" and self.owner.video_override is None:
            self._spawn(self._read_video(track))

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self.channel is not None and channel.label != CHANNEL_LABEL:
            return  # keep ours; extra channels are not part of the protocol
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("open", self._drain_outbox)
        if channel.readyState == "open":
            self._drain_outbox()

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and not self.connected:
            self.connected = True
            self.last_seen = self._loop.time()
            self.owner.peer_connected(self)
        elif state in ("failed", "closed") and not self._closed:
            self.owner.peer_gone(self, f"peer connection {state}")

    def _on_message(self, data: str | bytes) -> None:
        self.last_seen = self._loop.time()
        try:
            message: Any = json.loads(data)
        except ValueError:
            logger.warning("ignoring a data-channel message from %s that is not JSON", self.id)
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            logger.warning("ignoring a data-channel message from %s without a type", self.id)
            return
        if message["type"] == "ping":  # the page's heartbeat: liveness only
            return
        self.owner.data_received(self.participant, message)

    def _drain_outbox(self) -> None:
        channel = self.channel
        if channel is None:
            return
        outbox, self._outbox = self._outbox, []
        for text in outbox:
            channel.send(text)

    # --- media readers ------------------------------------------------------------------------

    def _on_audio_frame(self, frame: av.AudioFrame) -> None:
        """Hand one decoded 20 ms frame to the call as 48 kHz mono int16, nothing more."""
        self.last_seen = self._loop.time()
        channels = frame.layout.nb_channels
        # Packed s16 straight from the plane (to_ndarray costs 6x more). Browsers send mono;
        # aiortc's own decoder (the fallback path) makes two equal channels.
        samples = np.frombuffer(memoryview(frame.planes[0]), np.int16, frame.samples * channels)
        mono = samples.copy() if channels == 1 else samples[::channels].copy()
        rate = frame.sample_rate
        self.owner.audio_received(self.participant, AudioFrame(mono, rate, (frame.pts or 0) / rate))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        """The fallback path: read aiortc's decoded frames from the track."""
        try:
            while True:
                self._on_audio_frame(cast(av.AudioFrame, await track.recv()))
        except MediaStreamError:
            pass

    async def _read_video(self, track: MediaStreamTrack) -> None:
        """Keep only the newest decoded frame; conversion waits until someone reads it."""
        put, participant = self.owner.video_received, self.participant
        try:
            while True:
                put(participant, cast(av.VideoFrame, await track.recv()))
        except MediaStreamError:
            pass

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
