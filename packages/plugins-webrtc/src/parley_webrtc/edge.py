"""`WebRTCEdge`: the agent process itself is the WebRTC peer; browsers need no vendor account.

A call is a room in this process. `join` registers the agent's `WebRTCConnection` under the
call id, where the signaling routes find it: every browser that posts an offer for the call
gets its own peer connection with the agent.
"""

from __future__ import annotations

from typing import Any

from parley.edge import Call, Edge, EdgeCapabilities, User

from parley_webrtc.connection import WebRTCConnection
from parley_webrtc.ice import LoopbackMode, include_loopback
from parley_webrtc.rooms import Rooms, default_rooms
from parley_webrtc.settings import WebRTCSettings


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
        connect_timeout: float = 15.0,
        liveness_timeout: float = 10.0,
        max_buffered: float = 1.0,
        input_queue_frames: int = 100,
        opus_bitrate: int = 32000,
        opus_complexity: int = 5,
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
        )
        self._connections: list[WebRTCConnection] = []

    async def create_call(self, call_type: str, call_id: str, **options: Any) -> Call:
        """Describe a call; ``max_participants=N`` overrides the edge's limit for it."""
        return Call(call_type, call_id, self, dict(options))

    async def join(self, call: Call, agent_user: User) -> WebRTCConnection:
        include_loopback(self.settings.loopback)
        connection = WebRTCConnection(call, agent_user, self.settings, self.rooms)
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
