"""The in-memory edge's audio output: real-time playout, flush, back-pressure, records."""

from __future__ import annotations

import asyncio
import time

import pytest
from parley.frames import AudioFrame
from parley.testing import InMemoryAudioOutput, no_leaked_tasks
from parley.testing.signals import tone_frames

RATE = 24000


def frames(seconds: float) -> list[AudioFrame]:
    return list(tone_frames(seconds, RATE))


async def settle() -> None:
    """Let the playout task take its turn without waiting for wall-clock time."""
    for _ in range(5):
        await asyncio.sleep(0)


async def blocked(out: InMemoryAudioOutput, writer: asyncio.Task[None]) -> None:
    """Wait until ``writer`` waits for room: its last frame is queued beyond ``max_buffer``.

    Playout frees room every 20 ms of wall time, so how far the writer got meanwhile depends
    on the machine's speed; being held back does not.
    """
    async with asyncio.timeout(10):
        while out.buffered <= out.max_buffer + 1e-9 and not writer.done():
            await asyncio.sleep(0.001)


async def test_instant_mode_plays_every_frame_as_it_is_written() -> None:
    out = InMemoryAudioOutput(RATE, realtime=False)
    for frame in frames(0.1):
        await out.write(frame)
    assert out.buffered == 0.0
    assert out.seconds_played == pytest.approx(0.1)
    assert out.frames_written == 5
    assert len(out.writes) == 5
    assert out.flush() == 0.0
    assert out.flush_count == 1
    await out.wait_for_playout()
    assert out.audio().duration == pytest.approx(0.1)
    await out.aclose()


async def test_realtime_playout_uses_one_task_and_drains_the_buffer() -> None:
    async with no_leaked_tasks():
        before = asyncio.all_tasks()
        out = InMemoryAudioOutput(RATE, max_buffer=2.0)
        for frame in frames(0.2):
            await out.write(frame)
        assert out.buffered == pytest.approx(0.2)  # nothing played before the loop turns
        assert len(asyncio.all_tasks() - before) == 1
        await settle()
        assert out.buffered < 0.2  # playout has started: the first frame is on the wire
        assert out.seconds_played + out.buffered == pytest.approx(0.2)
        await out.wait_for_playout()
        assert out.buffered == 0.0
        assert out.seconds_played == pytest.approx(0.2)
        assert len(asyncio.all_tasks() - before) == 1  # the same task waits for more
        await out.aclose()


async def test_flush_drops_all_unplayed_audio_at_once() -> None:
    out = InMemoryAudioOutput(RATE, max_buffer=2.0)
    for frame in frames(1.0):
        await out.write(frame)
    await settle()
    queued = out.buffered
    dropped = out.flush()
    assert dropped == pytest.approx(queued)
    assert dropped > 0.5
    assert out.buffered == 0.0
    assert out.flushes[0].dropped == dropped
    assert out.seconds_played + out.seconds_dropped == pytest.approx(out.seconds_written)
    await asyncio.wait_for(out.wait_for_playout(), 10)  # at most the frame on the wire
    assert out.seconds_played == pytest.approx(1.0 - dropped)
    assert out.frames_after(out.flushes[0].at) == []
    await out.aclose()


async def test_write_applies_back_pressure_beyond_max_buffer() -> None:
    async with no_leaked_tasks():
        out = InMemoryAudioOutput(RATE, max_buffer=0.1)
        peak = 0.0

        async def writer() -> None:
            nonlocal peak
            for frame in frames(0.3):
                await out.write(frame)
                peak = max(peak, out.buffered)

        task = asyncio.create_task(writer())
        await blocked(out, task)
        assert not task.done()  # held back: the rest waits for playout
        await task
        assert peak <= 0.1 + 1e-6
        await out.wait_for_playout()
        assert out.seconds_played == pytest.approx(0.3)
        await out.aclose()


async def test_a_flush_releases_a_blocked_writer_and_counts_its_frame() -> None:
    async with no_leaked_tasks():
        out = InMemoryAudioOutput(RATE, max_buffer=0.04)

        async def writer() -> None:
            for frame in frames(0.3):
                await out.write(frame)

        task = asyncio.create_task(writer())
        await blocked(out, task)
        assert not task.done()
        queued = out.buffered
        assert queued > out.max_buffer  # the blocked writer's frame is already queued
        assert out.flush() == pytest.approx(queued)
        await task  # released by the flush
        await out.wait_for_playout()
        assert out.seconds_played + out.seconds_dropped == pytest.approx(out.seconds_written)
        await out.aclose()


async def test_writes_at_the_wrong_format_are_refused() -> None:
    out = InMemoryAudioOutput(RATE, realtime=False)
    with pytest.raises(ValueError, match="resample"):
        await out.write(AudioFrame.silence(0.02, 16000))
    with pytest.raises(ValueError, match="resample"):
        await out.write(AudioFrame.silence(0.02, RATE, channels=2))


async def test_wait_for_audio_returns_the_first_write_after_a_time() -> None:
    out = InMemoryAudioOutput(RATE, realtime=False)
    start = time.perf_counter()
    waiter = asyncio.create_task(out.wait_for_audio())
    await settle()
    first, second = frames(0.04)
    await out.write(first)
    await out.write(second)
    at = await waiter
    assert at == out.writes[0].at
    assert await out.wait_for_audio(since=start) == at  # already written: no waiting
    assert await out.wait_for_audio(since=at) == out.writes[1].at
    with pytest.raises(TimeoutError, match="agent audio"):
        await out.wait_for_audio(timeout=0.01)


async def test_helpers_select_frames_by_write_time() -> None:
    out = InMemoryAudioOutput(RATE, realtime=False)
    early, late = frames(0.04)
    await out.write(early)
    middle = time.perf_counter()
    await out.write(late)
    assert out.frames_after(middle) == [late]
    assert out.seconds_after(middle) == pytest.approx(0.02)
    assert out.seconds_after(0.0) == pytest.approx(0.04)


async def test_without_recorded_frames_counters_and_times_remain() -> None:
    out = InMemoryAudioOutput(RATE, realtime=False, record_frames=False)
    start = time.perf_counter()
    for frame in frames(0.1):
        await out.write(frame)
    assert out.writes == []
    assert len(out.write_times) == 5
    assert out.seconds_written == pytest.approx(0.1)
    assert await out.wait_for_audio(since=start) == out.write_times[0]
    with pytest.raises(RuntimeError, match="record_frames"):
        out.frames_after(start)


async def test_close_stops_playout_releases_waiters_and_discards_later_writes() -> None:
    async with no_leaked_tasks():
        out = InMemoryAudioOutput(RATE, max_buffer=0.04)
        for frame in frames(0.04):
            await out.write(frame)
        blocked = asyncio.create_task(out.write(frames(0.02)[0]))
        playout = asyncio.create_task(out.wait_for_playout())
        audio = asyncio.create_task(out.wait_for_audio())
        await settle()
        await out.aclose()
        await out.aclose()  # idempotent
        await blocked
        await playout
        with pytest.raises(ConnectionError):
            await audio
        written = out.frames_written
        await out.write(frames(0.02)[0])
        assert out.frames_written == written
        assert out.buffered == 0.0
        assert out.closed
