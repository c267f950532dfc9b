"""`WebRTCEdge`: the agent process itself is the WebRTC peer; browsers need no vendor account.

A call is a room in this process. `join` registers the agent's `WebRTCConnection` under the
call id, where the signaling routes find it: every browser that posts an offer for the call
gets its own peer connection with the agent.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from parley.edge import Call, Edge, EdgeCapabilities, User

from parley_webrtc.connection import WebRTCConnection
from parley_webrtc.ice import LoopbackMode, include_loopback
from parley_webrtc.rooms import Rooms, default_rooms
from parley_webrtc.settings import WebRTCSettings
from parley_webrtc.video_file import check_video_file

VIDEO_TRACK_OVERRIDE = "video_track_override"


class WebRTCEdge(Edge):
    """Local WebRTC edge on aiortc. See `WebRTCSettings` for the options."""

    capabilities = EdgeCapabilities(
        audio_in=True, audio_out=True, video_in=True, data=True, output_sample_rate=48000
    )

    def __init__(
        self,
        *,
        rooms: Rooms | None = None,
        max_participants: int = 4,
        ice_servers: tuple[str, ...] | list[str] = (),
        loopback: LoopbackMode = "auto",
        connect_timeout: float = 5.0,
        liveness_timeout: float = 10.0,
        max_buffered: float = 1.0,
        input_queue_frames: int = 100,
        opus_bitrate: int = 32000,
        opus_complexity: int = 5,
        video_track_override: str | os.PathLike[str] | None = None,
    ) -> None:
        self.rooms = rooms if rooms is not None else default_rooms
        self.settings = WebRTCSettings(
            max_participants=max_participants,
            ice_servers=tuple(ice_servers),
            loopback=loopback,
            connect_timeout=connect_timeout,
            liveness_timeout=liveness_timeout,
            max_buffered=max_buffered,
            input_queue_frames=input_queue_frames,
            opus_bitrate=opus_bitrate,
            opus_complexity=opus_complexity,
            video_track_override=_checked(video_track_override),
        )
        self._connections: list[WebRTCConnection] = []

    async def create_call(self, call_type: str, call_id: str, **options: Any) -> Call:
        """Describe a call. Options: ``max_participants=N`` overrides the edge's limit for it;
        ``video_track_override=PATH`` plays a local video file as the participants' video.

        Without an explicit ``video_track_override``, the one of the session being launched is
        used (`Runner.run(video_track_override=…)`, ``run --video-track-override``), when
        parley-core hands session params to edges.
        """
        options = dict(options)
        override = options.get(VIDEO_TRACK_OVERRIDE) or _launched_session_param(
            VIDEO_TRACK_OVERRIDE
        )
        options[VIDEO_TRACK_OVERRIDE] = await asyncio.to_thread(_checked, override)
        return Call(call_type, call_id, self, options)

    async def join(self, call: Call, agent_user: User) -> WebRTCConnection:
        include_loopback(self.settings.loopback)
        connection = WebRTCConnection(call, agent_user, self.settings, self.rooms.remove)
        try:
            self.rooms.add(connection)
        except BaseException:
            await connection.leave()
            raise
        self._connections = [c for c in self._connections if not c.closed]
        self._connections.append(connection)
        return connection

    async def aclose(self) -> None:
        for connection in self._connections:
            await connection.leave()
        self._connections.clear()


def _checked(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else str(check_video_file(path).resolve())


def _launched_session_param(name: str) -> Any:
    """A param of the session the launcher is starting, if core exposes them to edges."""
    from parley import launcher

    current = getattr(launcher, "current_session_params", None)
    return None if current is None else current.get().get(name)
