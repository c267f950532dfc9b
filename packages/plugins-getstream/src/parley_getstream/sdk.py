"""What the edge uses of Stream's SDK, written down: the joined-call object and its participants.

`getstream.video.rtc.join(call, user_id, create=..., subscription_config=...)` returns a
`ConnectionManager`; `CallConnection` is the part of it the edge relies on, so a test can hand
the edge a fake with the same interface (`StreamEdge(join=...)`). Its events, as the SDK emits
them (pyee, ``on(name, handler)``):

- ``participant_joined`` / ``participant_left``: an SFU event whose ``participant`` is a
  `getstream_rtc.RemoteParticipant` (``user_id``, ``session_id``, ``name``, ``image``, ``roles``);
- ``audio``: a `PcmData` (int16 ``samples``, ``sample_rate``, ``channels``, ``participant``) for
  every decoded frame of every remote audio track;
- ``track_added``: a `getstream_rtc.RemoteTrack` (``participant``, ``track_type``,
  ``video_frames()``), audio tracks included (the SDK reads those itself);
- ``custom``: the JSON of a custom event someone sent to the call (``{"type": "custom",
  "custom": {...}, "user": {...}, ...}``);
- ``call_ended``: the call ended (or the SDK left it);
- ``connection.state_changed``: ``{"old": CallingState, "new": CallingState}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from parley.edge import Participant, User

from parley_getstream.credentials import StreamCredentials

SAMPLE_RATE = 48000  # Opus's rate: the SDK sends it without resampling
# The seconds of PCM the SDK's send queue may hold: more than the output ever buffers, so the
# SDK never drops the agent's audio (the output's clock keeps at most `max_buffered` queued).
TRACK_BUFFER_MS = 10_000


class ParticipantsState(Protocol):
    def get_participants(self) -> list[Any]:
        """Every session on the call, this one included."""


class CallConnection(Protocol):
    """The agent's joined call, as `getstream.video.rtc.ConnectionManager` offers it."""

    user_id: str
    participants_state: ParticipantsState

    def on(self, event: str, f: Callable[..., Any]) -> Any: ...

    def remove_all_listeners(self, event: str | None = None) -> None: ...

    async def connect(self) -> None:
        """Join the call (the SDK picks the SFU and retries)."""

    async def add_tracks(self, audio: Any = None, video: Any = None) -> None:
        """Publish aiortc tracks; the SDK reads them and paces the audio."""

    async def leave(self) -> None: ...


JoinCall = Callable[..., Awaitable[CallConnection]]
"""``async (stream_call, user_id, *, create, subscription_config) -> CallConnection``, as
`getstream.video.rtc.join`."""


def sdk_client(credentials: StreamCredentials, user_agent: str) -> Any:
    """The SDK's REST client (`getstream.AsyncStream`) for these credentials."""
    from getstream import AsyncStream  # type: ignore[import-untyped]
    from getstream.stream import BASE_URL  # type: ignore[import-untyped]

    return AsyncStream(
        api_key=credentials.api_key,
        api_secret=credentials.api_secret,
        base_url=credentials.base_url or BASE_URL,
        user_agent=user_agent,
    )


def sdk_models() -> Any:
    """`getstream.models` (``UserRequest``, ``CallRequest``, ...)."""
    import getstream.models  # type: ignore[import-untyped]

    return getstream.models


def sdk_api_error() -> type[Exception]:
    """The SDK's error for a refused REST request (`getstream.StreamApiException`)."""
    from getstream.exceptions import StreamApiException  # type: ignore[import-untyped]

    error: type[Exception] = StreamApiException
    return error


def sdk_audio_track() -> Any:
    """The SDK's track for the agent's voice: 48 kHz mono, unpaced (the SDK paces it)."""
    from getstream.video.rtc import AudioStreamTrack  # type: ignore[import-untyped]

    return AudioStreamTrack(
        sample_rate=SAMPLE_RATE, channels=1, audio_buffer_size_ms=TRACK_BUFFER_MS, pace=False
    )


def pcm_data(samples: Any) -> Any:
    """Mono 48 kHz int16 samples as the SDK's `PcmData`."""
    from getstream.video.rtc.track_util import (  # type: ignore[import-untyped]
        AudioFormat,
        PcmData,
    )

    return PcmData(sample_rate=SAMPLE_RATE, format=AudioFormat.S16, samples=samples, channels=1)


async def sdk_join(
    stream_call: Any, user_id: str, *, create: bool, subscription_config: Any
) -> CallConnection:
    """`getstream.video.rtc.join`, imported when the first call is joined."""
    from getstream.video import rtc  # type: ignore[import-untyped]

    connection: CallConnection = await rtc.join(
        stream_call, user_id, create=create, subscription_config=subscription_config
    )
    return connection


def subscription(video: bool) -> Any:
    """The remote tracks to ask for: None (the SFU sends audio unasked) or audio and video."""
    if not video:
        return None
    from getstream.video.rtc.pb.stream.video.sfu.models import (  # type: ignore[import-untyped]
        models_pb2,
    )
    from getstream.video.rtc.tracks import (  # type: ignore[import-untyped]
        SubscriptionConfig,
        TrackSubscriptionConfig,
    )

    tracks = [models_pb2.TRACK_TYPE_AUDIO, models_pb2.TRACK_TYPE_VIDEO]
    return SubscriptionConfig(default=TrackSubscriptionConfig(track_types=tracks))


def to_participant(remote: Any, agent_user_id: str) -> Participant:
    """A Stream session as a Parley participant: its id is the session id (one user may join
    from two devices); the user keeps Stream's user id."""
    user_id = str(remote.user_id)
    session_id = str(remote.session_id)
    user = User(name=str(remote.name or user_id), id=user_id, image=remote.image or None)
    metadata = {
        "edge": "getstream",
        "user_id": user_id,
        "session_id": session_id,
        "roles": list(getattr(remote, "roles", ()) or ()),
    }
    return Participant(session_id, user, is_agent=user_id == agent_user_id, metadata=metadata)
