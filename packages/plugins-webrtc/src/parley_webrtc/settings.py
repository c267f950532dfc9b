"""Options of the WebRTC edge, shared by every call it joins."""

from __future__ import annotations

from dataclasses import dataclass

from parley_webrtc.ice import LoopbackMode


@dataclass(frozen=True, slots=True)
class WebRTCSettings:
    """Edge options. Per-call overrides go in ``create_call(..., max_participants=N)``.

    - ``max_participants``: browser peers per call (the agent not counted).
    - ``ice_servers``: STUN/TURN URLs for the agent's side; empty means host candidates only
      (right for localhost and LAN; aiortc would otherwise default to a public STUN server).
    - ``loopback``: offer 127.0.0.1 as a candidate (``"auto"``: only on loopback-only hosts).
    - ``connect_timeout``: seconds a peer may take from offer to connected (default 5); a
      peer that never connects gives its participant slot back after that.
    - ``liveness_timeout``: seconds without audio or data-channel traffic before a connected
      peer counts as gone (the demo page pings every 2 s).
    - ``max_buffered``: seconds of agent speech `AudioOutput.write` buffers before it waits.
    - ``input_queue_frames``: inbound 20 ms frames kept for a slow reader (oldest dropped).
    - ``opus_bitrate`` / ``opus_complexity``: encoder settings for the agent's voice.
    - ``video_track_override``: a local video file played, looped, as the participants'
      incoming video instead of their cameras (``create_call(..., video_track_override=…)``
      sets it per call).
    """

    max_participants: int = 4
    ice_servers: tuple[str, ...] = ()
    loopback: LoopbackMode = "auto"
    connect_timeout: float = 5.0
    liveness_timeout: float = 10.0
    max_buffered: float = 1.0
    input_queue_frames: int = 100
    opus_bitrate: int = 32000
    opus_complexity: int = 5
    video_track_override: str | None = None

    def __post_init__(self) -> None:
        if self.max_participants < 1:
            raise ValueError(f"max_participants must be at least 1, got {self.max_participants}")
        for name in ("connect_timeout", "liveness_timeout", "max_buffered"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.opus_complexity <= 10:
            raise ValueError(f"opus_complexity must be 0..10, got {self.opus_complexity}")
