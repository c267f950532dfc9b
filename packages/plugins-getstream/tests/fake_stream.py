"""Stream, faked at the SDK's two seams.

- `FakeStreamAPI`: Stream's REST API under respx, answering the requests the SDK's
  `AsyncStream` sends (users, get-or-create call, custom events) in the documented shapes.
- `FakeCallConnection`: in place of the `ConnectionManager` that `getstream.video.rtc.join`
  returns, with its interface (pyee events, ``participants_state``, ``connect``,
  ``add_tracks``, ``leave``). The published audio track is read by the SDK's own
  `AudioForwarder` into a `FakeLocalAudioTrack`, as the SDK does with its Rust track, so a
  test hears exactly what the SDK would send, and flushes reach it the way they reach the SDK.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import respx
from getstream.video.rtc.audio_forwarder import AudioForwarder
from getstream.video.rtc.track_util import AudioFormat, PcmData
from parley.testing import silence_frames, tone_frames
from pyee.asyncio import AsyncIOEventEmitter

API = "https://chat.stream-io-api.com"
API_KEY = "stream-key"
API_SECRET = "stream-secret-0123456789abcdefghijklmnop"


def _now_ns() -> int:
    return time.time_ns()


def user_response(user_id: str, name: str = "") -> dict[str, Any]:
    now = _now_ns()
    return {
        "id": user_id,
        "name": name,
        "role": "user",
        "language": "",
        "banned": False,
        "online": False,
        "custom": {},
        "teams": [],
        "created_at": now,
        "updated_at": now,
        "shadow_banned": False,
        "invisible": False,
        "blocked_user_ids": [],
        "total_unread_count": 0,
        "unread_channels": 0,
        "unread_count": 0,
        "unread_threads": 0,
        "channel_mutes": [],
        "devices": [],
        "mutes": [],
    }


def call_response(call_type: str, call_id: str, created_by: dict[str, Any]) -> dict[str, Any]:
    now = _now_ns()
    cid = f"{call_type}:{call_id}"
    return {
        "type": call_type,
        "id": call_id,
        "cid": cid,
        "current_session_id": "",
        "created_by": created_by,
        "custom": {},
        "backstage": False,
        "blocked_user_ids": [],
        "recording": False,
        "transcribing": False,
        "captioning": False,
        "translating": False,
        "created_at": now,
        "updated_at": now,
        "egress": {"broadcasting": False, "rtmps": []},
        "ingress": {
            "rtmp": {"address": f"rtmps://ingress.stream-io-video.com:443/{API_KEY}.{cid}"},
            "srt": {"address": "srt://ingress.stream-io-video.com:7001?passphrase={passphrase}"},
            "whip": {"address": f"https://video.stream-io-api.com/video/whip/{cid}"},
        },
        # "settings" (the call type's settings tree) is left out: the edge never reads it.
    }


class FakeStreamAPI:
    """Stream's REST API for one app, as respx routes; records what the SDK sent."""

    def __init__(self, router: respx.MockRouter, base: str = API) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[str, dict[str, Any]]] = []  # (call cid, request body)
        self.requests: list[httpx.Request] = []
        self.refuse_with: int | None = None  # answer every request with this status
        host = httpx.URL(base).host
        call = r"/api/v2/video/call/(?P<type>[\w-]+)/(?P<id>[\w-]+)"
        router.post(host=host, path="/api/v2/users").mock(side_effect=self._users)
        router.post(host=host, path__regex=call + "$").mock(side_effect=self._get_or_create)
        router.post(host=host, path__regex=call + "/event$").mock(side_effect=self._event)

    def _check(self, request: httpx.Request) -> httpx.Response | None:
        self.requests.append(request)
        if request.url.params.get("api_key") != API_KEY or not request.headers.get("authorization"):
            return self._error(401, 2, "api_key not found or signature missing")
        if self.refuse_with is not None:
            return self._error(self.refuse_with, 5, "refused by the test")
        return None

    @staticmethod
    def _error(status: int, code: int, message: str) -> httpx.Response:
        body = {
            "code": code,
            "message": message,
            "StatusCode": status,
            "duration": "0.10ms",
            "more_info": "https://getstream.io/chat/docs/api_errors_response",
            "details": [],
        }
        return httpx.Response(status, json=body)

    def _users(self, request: httpx.Request) -> httpx.Response:
        if (refused := self._check(request)) is not None:
            return refused
        body = json.loads(request.content)
        answered = {}
        for user_id, user in body["users"].items():
            self.users[user_id] = user
            answered[user_id] = user_response(user_id, user.get("name", ""))
        return httpx.Response(
            201,
            json={"duration": "1.20ms", "membership_deletion_task_id": "", "users": answered},
        )

    def _get_or_create(self, request: httpx.Request, type: str, id: str) -> httpx.Response:
        if (refused := self._check(request)) is not None:
            return refused
        body = json.loads(request.content)
        cid = f"{type}:{id}"
        created = cid not in self.calls
        creator = body.get("data", {}).get("created_by_id", "")
        if created:
            if not creator:
                return self._error(
                    400,
                    4,
                    'GetOrCreateCall failed with error: "either data.created_by or '
                    'data.created_by_id must be provided when using server side auth"',
                )
            self.calls[cid] = call_response(type, id, user_response(creator))
        return httpx.Response(
            201,
            json={
                "duration": "2.50ms",
                "created": created,
                "members": [],
                "own_capabilities": ["join-call", "send-audio", "send-video"],
                "call": self.calls[cid],
            },
        )

    def _event(self, request: httpx.Request, type: str, id: str) -> httpx.Response:
        if (refused := self._check(request)) is not None:
            return refused
        self.events.append((f"{type}:{id}", json.loads(request.content)))
        return httpx.Response(201, json={"duration": "0.80ms"})

    def custom_events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The ``custom`` payloads sent to calls, optionally only those of ``"type"`` kind."""
        payloads = [body["custom"] for _, body in self.events]
        return [p for p in payloads if kind in (None, p.get("type"))]


@dataclass
class FakeParticipant:
    """A `getstream_rtc.RemoteParticipant`'s fields."""

    user_id: str
    session_id: str
    name: str = ""
    image: str = ""
    roles: list[str] = field(default_factory=lambda: ["user"])


@dataclass
class FakeEvent:
    """An SFU ``participant_joined``/``participant_left`` event."""

    participant: FakeParticipant
    call_cid: str = ""
    name: str = ""


class FakeParticipantsState:
    def __init__(self) -> None:
        self.by_session: dict[str, FakeParticipant] = {}

    def get_participants(self) -> list[FakeParticipant]:
        return list(self.by_session.values())


class FakeLocalAudioTrack:
    """The SDK's Rust `LocalAudioTrack` as the forwarder sees it: takes PCM, can be flushed."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.flushes = 0
        self.sample_rates: set[int] = set()

    async def write_pcm(self, samples: np.ndarray, sample_rate: int, channels: int) -> None:
        assert channels == 1
        self.sample_rates.add(sample_rate)
        self.chunks.append(np.array(samples, dtype=np.int16))

    def flush(self) -> None:
        self.flushes += 1

    @property
    def seconds(self) -> float:
        return sum(c.size for c in self.chunks) / 48000


class FakeCallConnection(AsyncIOEventEmitter):
    """What `getstream.video.rtc.join` returns, with a test side to play the other people."""

    def __init__(
        self,
        call: Any,
        user_id: str,
        *,
        create: bool = True,
        subscription_config: Any = None,
        present: list[FakeParticipant] | None = None,
    ) -> None:
        super().__init__()
        self.call = call
        self.user_id = user_id
        self.create = create
        self.subscription_config = subscription_config
        self.participants_state = FakeParticipantsState()
        self.own = FakeParticipant(user_id, f"sess-{user_id}", name=user_id)
        self._present = list(present or [])
        self.connected = False
        self.left = False
        self.published: Any = None
        self.sent = FakeLocalAudioTrack()
        self._forwarding: asyncio.Task[None] | None = None
        self._clock = 0  # samples of audio sent per participant, for pts

    # --- the ConnectionManager interface ------------------------------------------------------

    async def connect(self) -> None:
        self.connected = True
        for participant in [self.own, *self._present]:
            self.participants_state.by_session[participant.session_id] = participant

    async def add_tracks(self, audio: Any = None, video: Any = None) -> None:
        assert self.connected, "add_tracks before connect"
        if audio is not None:
            self.published = audio
            self._forwarding = asyncio.create_task(AudioForwarder(audio, self.sent).run())

    async def leave(self) -> None:
        self.left = True
        if self._forwarding is not None:
            self._forwarding.cancel()
            await asyncio.gather(self._forwarding, return_exceptions=True)

    async def wait(self) -> None:
        while not self.left:
            await asyncio.sleep(0.01)

    # --- the test side ------------------------------------------------------------------------

    def join(self, user_id: str, name: str = "") -> FakeParticipant:
        session_id = f"sess-{user_id}-{len(self.participants_state.by_session)}"
        participant = FakeParticipant(user_id, session_id, name=name)
        self.participants_state.by_session[participant.session_id] = participant
        self.emit("participant_joined", FakeEvent(participant, name="participant_joined"))
        return participant

    def leave_call(self, participant: FakeParticipant) -> None:
        self.participants_state.by_session.pop(participant.session_id, None)
        self.emit("participant_left", FakeEvent(participant, name="participant_left"))

    def end_call(self) -> None:
        self.emit("call_ended", object())

    def send_custom(self, participant: FakeParticipant, custom: dict[str, Any]) -> None:
        self.emit(
            "custom",
            {
                "type": "custom",
                "call_cid": "default:x",
                "custom": custom,
                "user": {"id": participant.user_id, "name": participant.name},
            },
        )

    async def speak(self, participant: FakeParticipant, seconds: float) -> None:
        """``participant`` speaks (a tone the fake STT hears) as 20 ms SDK audio frames."""
        await self._send(participant, tone_frames(seconds, 48000))

    async def pause(self, participant: FakeParticipant, seconds: float) -> None:
        await self._send(participant, silence_frames(seconds, 48000))

    async def _send(self, participant: FakeParticipant, frames: Any) -> None:
        for frame in frames:
            samples = frame.to_int16().data.reshape(-1)
            self.emit(
                "audio",
                PcmData(
                    sample_rate=48000,
                    format=AudioFormat.S16,
                    samples=samples,
                    channels=1,
                    pts=self._clock,
                    time_base=1 / 48000,
                    participant=participant,
                ),
            )
            self._clock += samples.size
            await asyncio.sleep(frame.duration)  # the SDK delivers audio as it arrives


class FakeJoin:
    """`getstream.video.rtc.join` for the edge: hands out `FakeCallConnection`s."""

    def __init__(self, present: list[FakeParticipant] | None = None) -> None:
        self.present = present
        self.connections: list[FakeCallConnection] = []
        self._joined = asyncio.Event()

    async def __call__(
        self, call: Any, user_id: str, *, create: bool = True, subscription_config: Any = None
    ) -> FakeCallConnection:
        connection = FakeCallConnection(
            call,
            user_id,
            create=create,
            subscription_config=subscription_config,
            present=self.present,
        )
        self.connections.append(connection)
        self._joined.set()
        return connection

    async def wait(self) -> FakeCallConnection:
        await asyncio.wait_for(self._joined.wait(), 10)
        return self.connections[-1]
