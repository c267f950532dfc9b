"""Deepgram STT against a local server speaking the listen protocol (Nova v1 and Flux v2)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from parley.errors import ProviderDisconnected, ProviderError
from parley.plugins import resolve
from parley.stt import STTEvent
from parley.testing import silence_frames, tone_frames, until
from parley_deepgram import DeepgramError
from parley_deepgram.stt import DeepgramSTT, DeepgramSTTStream, _closed_error
from parley_deepgram.testing import FakeDeepgram
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

KEY = "test-deepgram-key"


def make_stt(fake: FakeDeepgram, **kwargs: Any) -> DeepgramSTT:
    return DeepgramSTT(api_key=KEY, base_url=fake.url, **kwargs)


async def push_speech(stream: DeepgramSTTStream, speech: float = 0.6, silence: float = 0.5) -> None:
    for frame in tone_frames(speech, 16000):
        await stream.push(frame)
    for frame in silence_frames(silence, 16000):
        await stream.push(frame)


async def read_until(
    stream: DeepgramSTTStream, done: Callable[[STTEvent], bool], timeout: float = 5.0
) -> list[STTEvent]:
    seen: list[STTEvent] = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            seen.append(event)
            if done(event):
                break
    return seen


async def read_into(stream: DeepgramSTTStream, seen: list[STTEvent]) -> None:
    """Every event to the stream's end (or its error), kept in ``seen``."""
    async with asyncio.timeout(5.0):
        async for event in stream:
            seen.append(event)


async def test_nova_options_auth_and_turn_events() -> None:
    async with FakeDeepgram(transcripts=["What's the weather in Oslo?"]) as fake:
        stream = make_stt(fake, keyterms=["Oslo"]).stream()
        await push_speech(stream)
        events = await read_until(stream, lambda e: e.type == "end_of_turn")
        await push_speech(stream, speech=0.3)  # a second utterance: "hello"
        second = await read_until(stream, lambda e: e.type == "end_of_turn")
        await stream.aclose()
    path, query = fake.requests[0]
    assert path == "/v1/listen"
    assert query["model"] == "nova-3" and query["encoding"] == "linear16"
    assert query["sample_rate"] == "16000" and query["channels"] == "1"
    assert query["interim_results"] == "true" and query["vad_events"] == "true"
    assert query["endpointing"] == "300" and query["utterance_end_ms"] == "1000"
    assert query["keyterm"] == "Oslo"
    assert fake.headers[0]["Authorization"] == f"Token {KEY}"
    kinds = [e.type for e in events]
    assert kinds[0] == "speech_started"
    assert "partial" in kinds and kinds.index("partial") < kinds.index("final")
    finals = [e for e in events if e.type == "final"]
    assert [e.text for e in finals] == ["What's the weather in Oslo?"]
    assert finals[0].confidence == pytest.approx(0.97)
    assert finals[0].audio_duration == pytest.approx(0.9, abs=0.05)  # speech + endpointing
    # speech_final and UtteranceEnd both end the turn; the engine hears it once.
    assert kinds.count("end_of_turn") == 1
    assert [e.text for e in second if e.type == "final"] == ["hello"]
    assert [e.type for e in second].count("end_of_turn") == 1


async def test_flush_sends_finalize_and_close_sends_close_stream() -> None:
    async with FakeDeepgram(transcripts=["first part", "last words"]) as fake:
        stream = make_stt(fake).stream()
        for frame in tone_frames(0.4, 16000):
            await stream.push(frame)
        await stream.flush()
        events = await read_until(stream, lambda e: e.type == "final")
        assert events[-1].text == "first part"
        for frame in tone_frames(0.3, 16000):
            await stream.push(frame)
        await stream.aclose()  # CloseStream: Deepgram finalizes what it has, then closes
        rest = [event async for event in stream]
    assert fake.controls == ["Finalize", "CloseStream"]
    assert [e.text for e in rest if e.type == "final"] == ["last words"]


async def test_keepalive_while_no_audio_flows() -> None:
    async with FakeDeepgram() as fake:
        stream = make_stt(fake, keepalive_interval=0.1).stream()
        await until(lambda: fake.controls.count("KeepAlive") >= 2)
        await stream.aclose()


async def test_reconnect_replays_audio_since_the_last_final() -> None:
    async with FakeDeepgram(
        transcripts=["said before the drop", "said across the drop"], drop_after_audio=1.3
    ) as fake:
        stream = make_stt(fake).stream()
        await push_speech(stream, 0.6, 0.5)  # finalized on the first connection
        first = await read_until(stream, lambda e: e.type == "final")
        for frame in tone_frames(0.8, 16000):  # the connection drops 0.2 s into this
            await stream.push(frame)
            await asyncio.sleep(0.001)
        for frame in silence_frames(0.5, 16000):
            await stream.push(frame)
        second = await read_until(stream, lambda e: e.type == "final")
        await stream.aclose()
    assert first[-1].text == "said before the drop"
    assert second[-1].text == "said across the drop"
    assert stream.connections == 2
    # The new connection got everything after the first final's end again: the 0.2 s of
    # silence past Deepgram's 300 ms endpoint, the 0.8 s utterance and its 0.5 s of silence;
    # not the finalized first utterance.
    assert fake.audio_seconds[1] == pytest.approx(0.2 + 0.8 + 0.5, abs=0.03)


async def test_a_drop_past_the_retries_ends_the_stream_as_a_disconnect() -> None:
    async with FakeDeepgram(transcripts=["never finished"], drop_after_audio=0.5) as fake:
        stream = make_stt(fake, max_retries=0).stream()
        for frame in tone_frames(0.8, 16000):  # the connection drops 0.5 s into this
            await stream.push(frame)
            await asyncio.sleep(0.001)
        seen: list[STTEvent] = []
        with pytest.raises(ProviderDisconnected, match="code 1011: NET-0000") as info:
            await read_into(stream, seen)
        await stream.aclose()
    assert "partial" in [e.type for e in seen]  # what was heard before the drop came first
    error = info.value
    assert isinstance(error, ProviderError) and not isinstance(error, DeepgramError)
    assert error.status == 1011 and error.retryable
    assert isinstance(error.__cause__, ConnectionClosedError)
    assert stream.connections == 1


@pytest.mark.parametrize(
    ("closed", "disconnect"),
    [
        (ConnectionClosedError(Close(1011, "NET-0000"), None), True),
        (ConnectionClosedError(None, None), True),  # no close frame at all: 1006
        (ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True), False),  # a clean close
        (ConnectionClosedError(Close(1008, "DATA-0000"), None), False),  # a refusal
    ],
)
def test_which_closes_are_disconnects(closed: ConnectionClosed, disconnect: bool) -> None:
    error = _closed_error(closed)
    assert isinstance(error, ProviderError)
    assert isinstance(error, ProviderDisconnected) is disconnect
    assert isinstance(error, DeepgramError) is not disconnect
    assert error.status == (closed.rcvd.code if closed.rcvd else 1006)


async def test_bad_audio_close_is_fatal_and_not_retried() -> None:
    async with FakeDeepgram(fatal_close=True) as fake:
        stream = make_stt(fake).stream()
        await push_speech(stream, 0.1, 0.0)
        with pytest.raises(DeepgramError, match="1008: DATA-0000"):
            await read_until(stream, lambda e: False)
        await push_speech(stream, 0.1, 0.0)  # dropped, never raised into the engine's loop
        await stream.aclose()
    assert stream.connections == 1


async def test_bad_key_is_refused_at_the_handshake() -> None:
    async with FakeDeepgram(api_key="another") as fake:
        stream = make_stt(fake, max_retries=3).stream()
        with pytest.raises(DeepgramError, match=r"HTTP 401: Invalid credentials.*DEEPGRAM_API_KEY"):
            await read_until(stream, lambda e: False)
        await stream.aclose()
    assert len(fake.headers) == 1


async def test_overloaded_server_is_retried_a_bounded_number_of_times() -> None:
    async with FakeDeepgram(reject_status=429) as fake:
        stream = make_stt(fake, max_retries=2).stream()
        with pytest.raises(DeepgramError, match="HTTP 429") as info:
            await read_until(stream, lambda e: False)
        await stream.aclose()
    assert info.value.retryable
    assert len(fake.headers) == 3


async def test_handshake_that_never_completes_times_out() -> None:
    async with FakeDeepgram(stall_handshake=True) as fake:
        stream = make_stt(fake, connect_timeout=0.2, max_retries=1).stream()
        with pytest.raises(DeepgramError, match="did not accept the connection"):
            await read_until(stream, lambda e: False)
        await stream.aclose()
    assert len(fake.headers) == 2


async def test_flux_eager_end_of_turn_is_an_early_final() -> None:
    async with FakeDeepgram(transcripts=["book a table for two"]) as fake:
        stt = make_stt(fake, eager_turn_detection=True, eot_threshold=0.8)
        assert stt.model == "flux-general-en"
        stream = stt.stream()
        await push_speech(stream, 0.6, 0.6)
        events = await read_until(stream, lambda e: e.type == "end_of_turn")
        await stream.aclose()
    path, query = fake.requests[0]
    assert path == "/v2/listen"
    assert query["eager_eot_threshold"] == "0.5" and query["eot_threshold"] == "0.8"
    assert "interim_results" not in query
    kinds = [e.type for e in events]
    assert kinds[0] == "speech_started" and "partial" in kinds
    assert [(e.type, e.text) for e in events if e.type in ("final", "end_of_turn")] == [
        ("final", "book a table for two"),
        ("end_of_turn", ""),  # the words already went out with the eager final
    ]
    assert events[-1].audio_duration == pytest.approx(0.6 + 0.5, abs=0.03)  # to Flux's end of turn
    assert "KeepAlive" not in fake.controls


async def test_flux_without_eager_mode_ends_the_turn_with_its_text() -> None:
    async with FakeDeepgram(transcripts=["hello there"]) as fake:
        stream = make_stt(fake, model="flux-general-en").stream()
        await push_speech(stream, 0.5, 0.6)
        events = await read_until(stream, lambda e: e.type == "end_of_turn")
        await stream.aclose()
    assert "eager_eot_threshold" not in fake.requests[0][1]
    assert not [e for e in events if e.type == "final"]
    assert events[-1].text == "hello there"


def test_configuration_errors_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(ValueError, match="DEEPGRAM_API_KEY"):
        DeepgramSTT()
    with pytest.raises(ValueError, match="Flux feature"):
        DeepgramSTT("nova-3", api_key="k", eager_turn_detection=True)
    with pytest.raises(ValueError, match=r"0\.3-0\.9"):
        DeepgramSTT(api_key="k", eager_turn_detection=0.95)
    monkeypatch.setenv("DEEPGRAM_API_KEY", "env-key")
    stt = resolve("stt", "deepgram/nova-3?endpointing=500&turn_events=false")
    assert isinstance(stt, DeepgramSTT)
    assert "endpointing=500" in stt.listen_url()
    assert stt.capabilities.turn_detection is False
    assert stt.listen_url().startswith("wss://api.deepgram.com/v1/listen?")
