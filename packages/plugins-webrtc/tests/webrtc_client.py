"""A Python aiortc participant that joins through the signaling routes (no browser needed)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, cast

import av
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from parley.frames import AudioFrame
from parley.testing import until
from parley_webrtc.output import CallAudioOutput, OutboundAudioTrack


class ClientPeer:
    """Sends a clip in a loop (or nothing) and records what the agent sends back.

    ``video=True`` also sends a camera: aiortc's test pattern (green 640x480 frames).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        call_id: str,
        *,
        clip: AudioFrame | None = None,
        video: bool = False,
    ) -> None:
        self.http = http
        self.call_id = call_id
        self.clip = clip
        self.video = video
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.participant_id: str | None = None
        self.frames_received = 0
        self.loud_frames_received = 0  # RMS above 0.02
        self.messages: list[dict[str, Any]] = []
        self.channel = self.pc.createDataChannel("parley")
        self.channel.on("message", lambda data: self.messages.append(json.loads(data)))
        self._output: CallAudioOutput | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    async def offer(self) -> httpx.Response:
        """Post the offer; on success apply the answer. Returns the HTTP response."""
        if self.clip is not None:
            self._output = CallAudioOutput(max_buffered=0.5)
            self.pc.addTrack(OutboundAudioTrack(self._output))
            self._tasks.append(asyncio.ensure_future(self._play_loop()))
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        if self.video:
            self.pc.addTrack(VideoStreamTrack())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        response = await self.http.post(
            f"/webrtc/calls/{self.call_id}/offer",
            json={"type": "offer", "sdp": self.pc.localDescription.sdp, "user": {"name": "bot"}},
        )
        if response.status_code == 200:
            body = response.json()
            self.participant_id = body["participant_id"]
            await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
        return response

    async def wait_connected(self) -> None:
        await until(
            lambda: self.pc.connectionState == "connected" and self.channel.readyState == "open",
            what="the client's peer connection and data channel to open",
        )

    def send(self, message: dict[str, Any]) -> None:
        self.channel.send(json.dumps(message))

    async def leave(self) -> httpx.Response:
        return await self.http.post(
            f"/webrtc/calls/{self.call_id}/participants/{self.participant_id}/leave"
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()

    async def _play_loop(self) -> None:
        assert self._output is not None
        assert self.clip is not None
        while True:
            await self._output.write(self.clip)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.append(asyncio.ensure_future(self._receive(track)))

    async def _receive(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = cast(av.AudioFrame, await track.recv())
                samples = frame.to_ndarray().astype(np.float32) / 32768
                self.frames_received += 1
                if float(np.sqrt(np.mean(samples**2))) > 0.02:
                    self.loud_frames_received += 1
