"""What the WebRTC edge adds to the engine's messages for the demo page, and its icon.

User transcripts name the speaker heard last (a second visitor is not "You"); agent
transcripts say how much of their audio is still to play (words revealed with playout) and,
when final, whether barge-in cut the audio off. ``/favicon.ico`` answers at the server root
and under the page's prefix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import numpy as np
import parley_webrtc
import pytest
from fastapi import FastAPI
from parley.edge import Participant, User
from parley.frames import AudioFrame
from parley_webrtc.connection import WebRTCConnection
from parley_webrtc.edge import WebRTCEdge
from parley_webrtc.rooms import Rooms
from parley_webrtc.routes import create_router


def frame(amplitude: int, seconds: float = 0.02) -> AudioFrame:
    samples = np.full(round(48000 * seconds), amplitude, np.int16)
    samples[::2] *= -1
    return AudioFrame(samples, 48000)


@pytest.fixture
async def connection() -> AsyncIterator[WebRTCConnection]:
    edge = WebRTCEdge(rooms=Rooms())
    call = await edge.create_call("default", "annotations")
    joined = await edge.join(call, User("Assistant", "agent"))
    assert isinstance(joined, WebRTCConnection)
    yield joined
    await edge.aclose()


async def test_user_transcripts_name_the_participant_heard_last(
    connection: WebRTCConnection,
) -> None:
    ada = Participant("p-ada", User("Ada", "ada"))
    bob = Participant("p-bob", User("Bob", "bob"))
    message = {"type": "transcript", "role": "user", "text": "hi", "final": True}
    assert connection.annotate(message) == message  # nobody heard yet: nothing to add

    connection.audio_received(ada, frame(8000))
    connection.audio_received(bob, frame(20))  # Bob's line is quiet: still Ada speaking
    assert connection.annotate(message) == {**message, "participant_id": "p-ada", "name": "Ada"}
    connection.audio_received(bob, frame(-8000))
    assert connection.annotate(message)["name"] == "Bob"
    # Other messages pass as they are.
    state = {"type": "state", "state": "speaking"}
    assert connection.annotate(state) is state


async def test_agent_transcripts_carry_playout_time_and_the_cut(
    connection: WebRTCConnection,
) -> None:
    output = connection.output
    partial = {"type": "transcript", "role": "agent", "text": "It is", "final": False}
    final = {"type": "transcript", "role": "agent", "text": "It is sunny.", "final": True}
    await output.write(frame(3000, 0.5))  # nobody is pulling yet: all of it still queued
    assert connection.annotate(partial) == {**partial, "playout_ms": 500}

    output.flush()  # barge-in
    assert connection.annotate(final) == {**final, "playout_ms": 0, "interrupted": True}
    await output.write(frame(3000, 0.1))  # a false interruption: the reply goes on
    assert connection.annotate(final)["interrupted"] is False
    output.flush()
    output.flush()  # nothing left to cut: the last cut still counts until the next write
    assert connection.annotate(final)["interrupted"] is True


async def test_favicon_at_the_root_and_under_the_page() -> None:
    app = FastAPI()
    parley_webrtc.register_routes(app=app, context=SimpleNamespace(webrtc_rooms=Rooms()))
    app_prefixed = FastAPI()
    app_prefixed.include_router(create_router(Rooms()))
    for target, path in ((app, "/favicon.ico"), (app_prefixed, "/webrtc/favicon.ico")):
        transport = httpx.ASGITransport(app=target)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
            response = await http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert response.text.startswith("<svg")
    transport = httpx.ASGITransport(app=app_prefixed)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
        page = await http.get("/webrtc/")
    assert 'rel="icon"' in page.text
