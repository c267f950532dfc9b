"""``video_track_override``: a local file plays as the participant's video instead of the camera."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from parley import Agent, AgentLauncher, User
from parley.testing import FakeLLM, FakeSTT, FakeTTS, until
from parley_webrtc.connection import WebRTCConnection
from parley_webrtc.edge import WebRTCEdge
from parley_webrtc.rooms import Rooms
from parley_webrtc.routes import create_router
from parley_webrtc.video_file import VideoFileError
from webrtc_client import ClientPeer

FPS = 10
FRAMES = 12  # 1.2 s, then the file loops
SIZE = (64, 48)  # width, height: unlike the client's 640x480 camera


def shade(index: int) -> int:
    return 20 + 16 * index


def index_of(image: np.ndarray) -> int:
    return round((float(image.mean()) - 20) / 16)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A small MPEG-4 file whose frame i is a flat grey of level `shade(i)`."""
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, FPS)
        for index in range(FRAMES):
            image = np.full((SIZE[1], SIZE[0], 3), shade(index), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path.resolve()


@contextlib.asynccontextmanager
async def client_on(connection: WebRTCConnection, rooms: Rooms) -> AsyncIterator[ClientPeer]:
    app = FastAPI()
    app.include_router(create_router(rooms))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://edge"
    ) as http:
        peer = ClientPeer(http, connection.call.call_id, video=True)
        try:
            response = await peer.offer()
            assert response.status_code == 200, response.text
            await peer.wait_connected()
            yield peer
        finally:
            await peer.close()


async def collect(
    connection: WebRTCConnection, enough: Callable[[list[tuple[str, Any]]], bool], what: str
) -> tuple[list[tuple[str, Any]], float]:
    """Read ``video_input`` until ``enough(frames)``; returns the frames and the seconds read."""
    frames: list[tuple[str, Any]] = []

    async def read() -> None:
        async for participant, frame in connection.video_input():
            frames.append((participant.id, frame.data))

    loop = asyncio.get_running_loop()
    started = loop.time()
    reader = asyncio.ensure_future(read())
    try:
        await until(lambda: enough(frames), 30, what=what)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return frames, loop.time() - started


def looped(frames: list[tuple[str, Any]]) -> bool:
    """Most of the file was seen, and then its start again."""
    indices = [index_of(image) for _, image in frames]
    wrapped = any(later < earlier for earlier, later in itertools.pairwise(indices))
    return len(set(indices)) >= FRAMES // 2 and wrapped


async def test_the_file_plays_instead_of_the_participants_camera(clip: Path) -> None:
    rooms = Rooms()
    edge = WebRTCEdge(rooms=rooms)
    call = await edge.create_call("default", "video", video_track_override=clip)
    connection = await edge.join(call, User("Agent", "agent"))
    try:
        async with client_on(connection, rooms) as peer:
            # The agent asked the browser not to send its camera at all.
            video = [t for t in peer.pc.getTransceivers() if t.kind == "video"]
            assert [t.currentDirection for t in video] == ["inactive"]
            # At least one pass of the file, however long the machine takes to show it.
            frames, seconds = await collect(connection, looped, "a pass, then the start again")
            player = connection.video_player
            assert player is not None and player.loops >= 1

        assert frames, "no video reached video_input"
        assert {pid for pid, _ in frames} == {peer.participant_id}
        assert {image.shape for _, image in frames} == {(SIZE[1], SIZE[0], 3)}
        indices = [index_of(image) for _, image in frames]
        assert set(indices) <= set(range(FRAMES))
        assert len(set(indices)) >= FRAMES // 2  # played through, not one frame
        # Paced by the file's timestamps and looped: the sequence rises, then starts over.
        assert any(later < earlier for earlier, later in itertools.pairwise(indices))
        assert len(frames) <= seconds * FPS + 3  # never faster than the file's own pace
    finally:
        await edge.aclose()
    assert connection.video_player is not None
    assert connection.video_player.frames_played > 0


async def test_without_override_the_camera_is_the_video(clip: Path) -> None:
    rooms = Rooms()
    edge = WebRTCEdge(rooms=rooms)
    connection = await edge.join(await edge.create_call("default", "cam"), User("Agent", "agent"))
    try:
        async with client_on(connection, rooms):
            frames, _ = await collect(connection, bool, "video from the camera")
        assert frames and {image.shape for _, image in frames} == {(480, 640, 3)}
        assert connection.video_player is None
    finally:
        await edge.aclose()


async def test_session_params_choose_the_file(clip: Path) -> None:
    """The server's ``run --video-track-override`` sends it as a session param; a join_call
    that hands its params to `create_call` plays it on that call."""
    rooms = Rooms()

    async def create_agent(**params: Any) -> Agent:
        edge = WebRTCEdge(rooms=rooms)
        return Agent("x", edge=edge, stt=FakeSTT([]), llm=FakeLLM([]), tts=FakeTTS())

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        call = await agent.create_call(call_type, call_id, **params)
        async with agent.join(call):
            await agent.finish()

    async with AgentLauncher(create_agent, join_call, warm_up=False, drain_timeout=0) as launcher:
        session = await launcher.start_session("with-video", video_track_override=str(clip))
        connection = session.connection
        assert isinstance(connection, WebRTCConnection)
        assert connection.video_override == str(clip)
        async with client_on(connection, rooms):
            await until(
                lambda: connection.video_player and connection.video_player.frames_played,
                what="the file to play",
            )


async def test_a_file_that_cannot_play_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(VideoFileError, match="no such file"):
        WebRTCEdge(video_track_override=tmp_path / "missing.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(VideoFileError, match=r"cannot open|no video stream"):
        await WebRTCEdge().create_call("default", "x", video_track_override=text)


@pytest.fixture(autouse=True)
def _quiet_aioice(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="aioice")
    caplog.set_level("WARNING", logger="aiortc")
