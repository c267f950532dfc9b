"""The testing kit's fake STT: scripted detection from audio energy, and manual injection."""

from __future__ import annotations

import asyncio

import pytest
from parley.frames import AudioFrame
from parley.stt import STTEvent
from parley.testing import FakeBatchSTT, FakeSTT, FakeSTTStream, no_leaked_tasks
from parley.testing.signals import silence_frames, tone_frames

RATE = 16000


async def speak(stream: FakeSTTStream, speech: float, silence: float) -> None:
    for frame in tone_frames(speech, RATE):
        await stream.push(frame)
    for frame in silence_frames(silence, RATE):
        await stream.push(frame)


def drain(stream: FakeSTTStream) -> list[tuple[str, str]]:
    """Events already handed to the reader, without waiting."""
    events: list[tuple[str, str]] = []
    while not stream._events.empty():
        event = stream._events.get_nowait()
        assert event is not None
        events.append((event.type, event.text))
    return events


async def test_scripted_utterances_follow_the_script_with_word_by_word_partials() -> None:
    stt = FakeSTT(script=["hello there", "what's the weather"], seconds_per_word=0.1)
    stream = stt.stream()
    await speak(stream, 0.5, 0.4)
    assert drain(stream) == [
        ("speech_started", ""),
        ("partial", "hello"),
        ("partial", "hello there"),
        ("final", "hello there"),
    ]
    await speak(stream, 0.25, 0.4)
    assert drain(stream) == [
        ("speech_started", ""),
        ("partial", "what's"),
        ("partial", "what's the"),
        ("final", "what's the weather"),
    ]
    assert stt.finals == ["hello there", "what's the weather"]
    assert not stt.capabilities.turn_detection
    await stt.aclose()


async def test_turn_detection_adds_end_of_turn_and_shows_in_capabilities() -> None:
    stt = FakeSTT(script=["one"], turn_detection=True, interim_results=False)
    assert stt.capabilities.turn_detection
    assert not stt.capabilities.interim_results
    stream = stt.stream()
    await speak(stream, 0.3, 0.3)
    assert drain(stream) == [("speech_started", ""), ("final", "one"), ("end_of_turn", "")]
    await stt.aclose()


async def test_a_pause_shorter_than_min_silence_keeps_the_utterance_open() -> None:
    stt = FakeSTT(script=["a b"], min_silence=0.3)
    stream = stt.stream()
    await speak(stream, 0.2, 0.2)
    await speak(stream, 0.2, 0.3)
    events = drain(stream)
    assert [e for e in events if e[0] == "speech_started"] == [("speech_started", "")]
    assert [e for e in events if e[0] == "final"] == [("final", "a b")]
    final = next(e for e in stream.emitted if e.event.type == "final").event
    assert final.audio_duration == pytest.approx(0.6, abs=0.021)
    await stt.aclose()


async def test_script_running_out_falls_back_to_numbered_utterances() -> None:
    stt = FakeSTT(script=["first"], interim_results=False)
    stream = stt.stream()
    await speak(stream, 0.2, 0.3)
    await speak(stream, 0.2, 0.3)
    assert stt.finals == ["first", "utterance 2"]
    await stt.aclose()


async def test_quiet_audio_below_threshold_is_not_speech() -> None:
    stt = FakeSTT(script=["never"], threshold=0.5)
    stream = stt.stream()
    await speak(stream, 0.5, 0.5)  # the tone's RMS is about 0.21
    assert drain(stream) == []
    assert stream.frames_pushed == 50
    assert stream.seconds_pushed == pytest.approx(1.0)
    await stt.aclose()


async def test_flush_finalizes_the_open_utterance() -> None:
    stt = FakeSTT(script=["cut short"], interim_results=False)
    stream = stt.stream()
    await speak(stream, 0.2, 0.0)
    assert stream.in_speech
    await stream.flush()
    assert drain(stream) == [("speech_started", ""), ("final", "cut short")]
    await stt.aclose()


async def test_latency_delays_the_final_without_blocking_push() -> None:
    stt = FakeSTT(script=["late"], latency=0.05, interim_results=False, turn_detection=True)
    stream = stt.stream()
    await speak(stream, 0.2, 0.3)
    assert drain(stream) == [("speech_started", "")]  # the final is not out yet
    events = []
    async for event in stream:
        events.append((event.type, event.text))
        if event.type == "end_of_turn":
            break
    assert events == [("final", "late"), ("end_of_turn", "")]
    await stt.aclose()


async def test_closing_cancels_pending_delayed_finals() -> None:
    async with no_leaked_tasks():
        stt = FakeSTT(script=["never said"], latency=30.0, interim_results=False)
        stream = stt.stream()
        await speak(stream, 0.2, 0.3)
        await stt.aclose()
    assert [e.type async for e in stream] == ["speech_started"]
    assert stt.finals == []


async def test_manual_mode_ignores_audio_and_says_what_it_is_told() -> None:
    stt = FakeSTT()
    assert not stt.capabilities.interim_results
    stream = stt.stream()
    await speak(stream, 0.5, 0.5)
    assert drain(stream) == []
    await stt.say("hello", speech_started=True, partials=True)
    await stream.inject(STTEvent("partial", "custom"))
    assert drain(stream) == [
        ("speech_started", ""),
        ("partial", "hello"),
        ("final", "hello"),
        ("end_of_turn", ""),
        ("partial", "custom"),
    ]
    await stream.say("no turn end", end_of_turn=False)
    assert drain(stream) == [("final", "no turn end")]
    times = [e.at for e in stream.emitted]
    assert times == sorted(times)
    await stt.aclose()


async def test_say_waits_for_the_engine_to_open_a_stream() -> None:
    stt = FakeSTT()
    received: list[str] = []

    async def engine() -> None:
        await asyncio.sleep(0.01)
        async for event in stt.stream():
            received.append(event.type)

    task = asyncio.create_task(engine())
    await stt.say("hi")
    assert stt.current_stream is stt.streams[0]
    await stt.aclose()
    await task
    assert received == ["final", "end_of_turn"]
    assert stt.current_stream is None


async def test_wait_for_stream_times_out_with_a_clear_message() -> None:
    with pytest.raises(TimeoutError, match="STT stream"):
        await FakeSTT().wait_for_stream(timeout=0.01)


async def test_fail_raises_in_the_reader_and_error_raises_on_push() -> None:
    stream = FakeSTT().stream()
    await stream.say("before")
    await stream.fail(RuntimeError("provider down"))
    seen: list[str] = []

    async def read() -> None:
        async for event in stream:
            seen.append(event.type)

    with pytest.raises(RuntimeError, match="provider down"):
        await read()
    assert seen == ["final", "end_of_turn"]

    broken = FakeSTT(script=[], error=ConnectionError("socket closed")).stream()
    with pytest.raises(ConnectionError):
        await broken.push(AudioFrame.silence(0.02, RATE))


async def test_close_does_not_block_when_the_reader_is_gone_and_the_queue_is_full() -> None:
    stream = FakeSTT().stream()
    for _ in range(stream._events.maxsize):
        await stream.inject(STTEvent("partial", "x"))
    await asyncio.wait_for(stream.aclose(), 10)
    await stream.say("after close")  # dropped, never blocks
    assert stream.closed


async def test_batch_stt_returns_the_script_then_numbered_utterances() -> None:
    stt = FakeBatchSTT(["hello"])
    audio = AudioFrame.silence(0.5, RATE)
    assert await stt.recognize(audio) == "hello"
    assert await stt.recognize(audio) == "utterance 2"
    assert stt.utterances == [audio, audio]
    failing = FakeBatchSTT(error=RuntimeError("model crashed"))
    with pytest.raises(RuntimeError, match="model crashed"):
        await failing.recognize(audio)
