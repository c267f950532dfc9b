"""The agent's outbound audio: encoding, pacing, flush (barge-in), playout and back-pressure."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
from parley.frames import AudioFrame
from parley.testing.signals import tone_frames
from parley_webrtc.opus import FRAME_SAMPLES, silence_packet
from parley_webrtc.output import CallAudioOutput, OutboundAudioTrack


def tone(seconds: float, sample_rate: int = 48000, frequency: int = 440) -> AudioFrame:
    frames = list(tone_frames(seconds, sample_rate, frequency=frequency, frame_duration=seconds))
    assert len(frames) == 1
    return frames[0]


@contextlib.asynccontextmanager
async def pulling(track: OutboundAudioTrack) -> AsyncIterator[list[bytes]]:
    """Pull packets from ``track`` in the background, as aiortc's sender does."""
    payloads: list[bytes] = []

    async def pull() -> None:
        while True:
            payloads.append(bytes(await track.recv()))

    task = asyncio.ensure_future(pull())
    try:
        yield payloads
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        track.stop()


async def test_flush_drops_everything_unplayed_and_reports_seconds() -> None:
    output = CallAudioOutput(max_buffered=5.0)
    await output.write(tone(1.0))
    await output.write(tone(0.01))  # half a frame, not yet encoded
    assert output.buffered == pytest.approx(1.01)
    assert output.flush() == pytest.approx(1.01)
    assert output.buffered == 0
    assert output.flush() == 0


async def test_write_converts_rate_and_channels() -> None:
    output = CallAudioOutput(max_buffered=5.0)
    stereo_16k = AudioFrame(np.repeat(tone(0.5, 16000).data, 2, axis=1), 16000)
    await output.write(stereo_16k)
    assert output.buffered == pytest.approx(0.5, abs=0.03)  # the resampler holds back a little


async def test_payloads_decode_back_to_the_written_tone() -> None:
    output = CallAudioOutput(max_buffered=5.0)
    await output.write(tone(0.5, frequency=440))
    track = OutboundAudioTrack(output)
    decoder = av.CodecContext.create("libopus", "r")
    decoded = []
    for _ in range(25):
        packet = await track.recv()
        for frame in decoder.decode(packet):
            decoded.append(frame.to_ndarray().reshape(-1, frame.layout.nb_channels)[:, 0])
    track.stop()
    audio = np.concatenate(decoded[5:]).astype(np.float64) / 32768  # past the codec's start-up
    rms = float(np.sqrt(np.mean(audio**2)))
    assert rms == pytest.approx(0.3 / np.sqrt(2), rel=0.15)
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.argmax(spectrum) * 48000 / len(audio)
    assert peak_hz == pytest.approx(440, abs=10)


async def test_track_paces_packets_and_is_silent_right_after_flush() -> None:
    output = CallAudioOutput(max_buffered=5.0)
    await output.write(tone(1.0))
    track = OutboundAudioTrack(output)
    packets = [await track.recv() for _ in range(5)]
    first_pts = packets[0].pts
    assert first_pts is not None
    assert [p.pts for p in packets] == [first_pts + i * FRAME_SAMPLES for i in range(5)]
    assert all(bytes(p) != silence_packet() for p in packets)
    assert track.speech_frames_sent == 5

    output.flush()
    after = [bytes(await track.recv()) for _ in range(3)]
    assert after == [silence_packet()] * 3
    assert track.speech_frames_sent == 5
    assert track.frames_sent == 8
    track.stop()


async def test_wait_for_playout_returns_when_the_track_has_sent_everything() -> None:
    output = CallAudioOutput(max_buffered=5.0)
    track = OutboundAudioTrack(output)
    async with pulling(track):
        await output.write(tone(0.2))
        await output.wait_for_playout()
        assert output.buffered == 0
        assert track.speech_frames_sent == 10


async def test_write_waits_while_the_buffer_is_full() -> None:
    output = CallAudioOutput(max_buffered=0.1)
    track = OutboundAudioTrack(output)
    async with pulling(track):
        await output.write(tone(0.5))
        assert output.buffered <= 0.1 + 0.02
        assert track.speech_frames_sent >= 25 - 6  # the rest was played before write returned


async def test_every_peer_gets_the_same_payload_encoded_once() -> None:
    output = CallAudioOutput(max_buffered=5.0)
    first, second = OutboundAudioTrack(output), OutboundAudioTrack(output)
    async with pulling(first) as one, pulling(second) as two:
        await output.write(tone(0.2))
        await output.wait_for_playout()
        await asyncio.sleep(0.05)
    assert output.frames_played == 10
    assert first.speech_frames_sent == second.speech_frames_sent == 10
    speech_one = [p for p in one if p != silence_packet()]
    speech_two = [p for p in two if p != silence_packet()]
    assert speech_one == speech_two


async def test_audio_waits_for_the_first_listener_then_keeps_real_time_pace() -> None:
    output = CallAudioOutput(max_buffered=5.0)
    await output.write(tone(0.1))
    await asyncio.sleep(0.1)
    assert output.buffered == pytest.approx(0.1)  # nobody listening yet: held
    output.start_clock()  # what a track's first recv does
    await output.wait_for_playout()  # with no track pulling, the clock plays to nobody
    assert output.frames_played == 5


async def test_a_stalled_loop_resyncs_instead_of_bursting_old_audio() -> None:
    output = CallAudioOutput(max_buffered=5.0)
    track = OutboundAudioTrack(output)
    await track.recv()
    time.sleep(0.3)  # noqa: ASYNC251 - block the loop, as a long synchronous call would
    await track.recv()
    assert track.resyncs == 1
    assert track.lateness().max() >= 0.2
    track.stop()


async def test_closed_output_ignores_writes() -> None:
    output = CallAudioOutput(max_buffered=0.05)
    output.close()
    await output.write(tone(1.0))  # must not wait forever
    assert output.buffered == 0
    await output.wait_for_playout()
