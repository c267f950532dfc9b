"""`StreamAudioOutput` on the SDK's real `AudioStreamTrack`, read by the SDK's own forwarder
into a fake Rust track: whole 20 ms frames, real-time back-pressure, flush for barge-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
from fake_stream import FakeLocalAudioTrack
from getstream.video.rtc.audio_forwarder import AudioForwarder
from parley.frames import AudioFrame
from parley.testing import tone_frames, until
from parley_getstream.output import FRAME_SAMPLES, StreamAudioOutput
from parley_getstream.sdk import sdk_audio_track


class Published:
    def __init__(self, max_buffered: float) -> None:
        self.track = sdk_audio_track()
        self.sdk = FakeLocalAudioTrack()
        self.output = StreamAudioOutput(self.track, max_buffered=max_buffered)
        self.task = asyncio.create_task(AudioForwarder(self.track, self.sdk).run())

    async def close(self) -> None:
        self.output.close()
        self.track.stop()
        await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def published() -> AsyncIterator[Published]:
    rig = Published(max_buffered=0.2)
    yield rig
    await rig.close()


async def test_writes_reach_the_sdk_as_whole_frames_at_48k(published: Published) -> None:
    for frame in tone_frames(0.105, 48000, frame_duration=0.035):  # not whole 20 ms frames
        await published.output.write(frame)
    await published.output.wait_for_playout()  # pads the tail to a whole frame
    await until(lambda: published.sdk.seconds >= 0.12)
    assert published.sdk.sample_rates == {48000}
    assert all(chunk.size == FRAME_SAMPLES for chunk in published.sdk.chunks)
    assert published.output.buffered == 0
    for frame in tone_frames(0.1, 24000):  # another rate is resampled
        await published.output.write(frame)
    await until(lambda: published.sdk.seconds >= 0.18)
    assert published.sdk.sample_rates == {48000}


async def test_writers_are_held_to_real_time(published: Published) -> None:
    buffered: list[float] = []
    for frame in tone_frames(0.6, 48000):
        await published.output.write(frame)
        buffered.append(published.output.buffered)
    # A write returns only once at most max_buffered is left to play (the clock has run).
    assert max(buffered) <= 0.2 + 1e-6
    assert published.output.frames_sent == 30


async def test_flush_drops_queued_audio_here_and_in_the_sdk(published: Published) -> None:
    output = published.output
    for frame in tone_frames(0.2, 48000):
        await output.write(frame)
    await until(lambda: published.sdk.seconds >= 0.2)
    dropped = output.flush()
    assert 0 < dropped <= 0.2 + 1e-6
    assert output.buffered == 0
    await until(lambda: published.sdk.flushes == 1)  # the SDK's queue is cleared too
    # Audio written after the flush is sent, not dropped by it.
    before = published.sdk.seconds
    marker = AudioFrame(np.full(FRAME_SAMPLES, 1234, dtype=np.int16), 48000)
    await output.write(marker)
    await until(lambda: published.sdk.seconds > before)
    assert published.sdk.flushes == 1
    assert np.all(published.sdk.chunks[-1] == 1234)


async def test_a_write_waiting_for_room_returns_at_a_flush(published: Published) -> None:
    output = published.output
    long = AudioFrame(np.full(5 * 48000, 3000, dtype=np.int16), 48000)
    writer = asyncio.create_task(output.write(long))
    await until(lambda: output.buffered > 4.0)
    await asyncio.sleep(0.05)
    assert not writer.done()  # it waits for 4.8 s to play out
    assert output.flush() > 4.0
    await until(writer.done, timeout=2.0)
    await until(lambda: published.sdk.flushes == 1)
    assert output.buffered == 0


async def test_writes_after_close_are_dropped(published: Published) -> None:
    published.output.close()
    await published.output.write(next(iter(tone_frames(0.02, 48000))))
    assert published.output.frames_sent == 0
