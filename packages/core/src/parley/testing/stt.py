"""Fake speech-to-text: scripted transcripts for audio, or events a test injects by hand.

Scripted mode (``FakeSTT(script=[...])``) listens to the pushed audio: a frame whose RMS level
reaches ``threshold`` is speech, and ``min_silence`` seconds below it end the utterance. Each
utterance produces ``speech_started``, word-by-word ``partial`` events while the speech lasts
(``interim_results``), then ``final`` with the next script line, followed by ``end_of_turn``
when ``turn_detection`` is on. All timing is measured in audio seconds, so results never depend
on how fast a test pushes.

Manual mode (``FakeSTT()``, no script) ignores the audio; tests and benchmarks drive it with
``await stream.say("hello")`` or ``await stream.inject(STTEvent(...))``, or the same methods
on the `FakeSTT`, which forward to the newest open stream.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from parley.frames import AudioFrame
from parley.stt import STT, BatchSTT, STTCapabilities, STTEvent, STTStream
from parley.testing._waiters import Waiters
from parley.testing.signals import level


def _fallback_text(number: int) -> str:
    return f"utterance {number}"


class _Script:
    """Script lines shared by every stream of one STT; ``utterance N`` once they run out."""

    def __init__(self, lines: Sequence[str]) -> None:
        self._lines = deque(lines)
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return self._lines.popleft() if self._lines else _fallback_text(self.count)


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    """An event the stream handed to its reader, with ``time.perf_counter()`` at hand-off."""

    event: STTEvent
    at: float


class FakeSTTStream(STTStream):
    """One recognition stream of a `FakeSTT`; see the module docstring for the two modes."""

    def __init__(self, stt: FakeSTT, language: str | None) -> None:
        super().__init__()
        self.stt = stt
        self.language = language or stt.capabilities.languages[0]
        self.emitted: list[EmittedEvent] = []
        self.frames_pushed = 0
        self.seconds_pushed = 0.0
        self._failure: BaseException | None = None
        self._delayed: set[asyncio.Task[None]] = set()
        # utterance state (scripted mode)
        self._in_speech = False
        self._words: list[str] = []
        self._text = ""
        self._shown = 0
        self._speech = 0.0  # seconds of voiced audio in the utterance
        self._length = 0.0  # seconds since the utterance started, pauses included
        self._silence = 0.0  # seconds of trailing silence

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_speech(self) -> bool:
        """Whether scripted detection is inside an utterance."""
        return self._in_speech

    # --- the STT contract -----------------------------------------------------------------

    async def push(self, frame: AudioFrame) -> None:
        if self._closed:
            return
        if self.stt.error is not None:
            raise self.stt.error
        self.frames_pushed += 1
        self.seconds_pushed += frame.duration
        if not self.stt.scripted:
            return
        duration = frame.duration
        if level(frame) >= self.stt.threshold:
            self._silence = 0.0
            if not self._in_speech:
                await self._start_utterance()
            self._speech += duration
            self._length += duration
            await self._maybe_partial()
        elif self._in_speech:
            self._silence += duration
            self._length += duration
            if self._silence >= self.stt.min_silence - 1e-9:
                await self._end_utterance()

    async def flush(self) -> None:
        if self._in_speech:
            await self._end_utterance()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._delayed:
            task.cancel()
        if self._delayed:
            await asyncio.gather(*self._delayed, return_exceptions=True)
        # The reader may be gone with the queue full: make room for the end marker.
        while self._events.full():
            self._events.get_nowait()
        self._events.put_nowait(None)

    async def _iterate(self) -> AsyncIterator[STTEvent]:
        while (event := await self._events.get()) is not None:
            yield event
        if self._failure is not None:
            raise self._failure

    async def _emit(self, event: STTEvent) -> None:
        if not self._closed:
            await self._events.put(event)
            self.emitted.append(EmittedEvent(event, time.perf_counter()))

    # --- test-side API --------------------------------------------------------------------

    async def inject(self, event: STTEvent) -> None:
        """Hand ``event`` to the reader now."""
        await self._emit(event)

    async def say(
        self,
        text: str,
        *,
        end_of_turn: bool = True,
        speech_started: bool = False,
        partials: bool = False,
    ) -> None:
        """Emit a transcript without audio: optionally ``speech_started`` and word-by-word
        partials, then ``final`` (after the STT's ``latency``) and, when ``end_of_turn``, an
        ``end_of_turn`` event right behind it (with empty text: the final carries it)."""
        if speech_started:
            await self._emit(STTEvent("speech_started", language=self.language))
        if partials:
            words = text.split()
            for count in range(1, len(words) + 1):
                await self._emit(
                    STTEvent("partial", " ".join(words[:count]), language=self.language)
                )
        if self.stt.latency > 0:
            await asyncio.sleep(self.stt.latency)
        await self._emit_final(text, 0.0, end_of_turn)

    async def fail(self, error: BaseException) -> None:
        """End the event iteration by raising ``error`` in the reader (a provider failure)."""
        self._failure = error
        await self.aclose()

    # --- scripted detection ---------------------------------------------------------------

    async def _start_utterance(self) -> None:
        self._in_speech = True
        self._text = self.stt._script.next()
        self._words = self._text.split()
        self._shown = 0
        self._speech = self._length = self._silence = 0.0
        await self._emit(STTEvent("speech_started", language=self.language))

    async def _maybe_partial(self) -> None:
        if not self.stt.capabilities.interim_results or self._shown >= len(self._words):
            return
        if self._speech >= (self._shown + 1) * self.stt.seconds_per_word - 1e-9:
            self._shown += 1
            text = " ".join(self._words[: self._shown])
            await self._emit(STTEvent("partial", text, language=self.language))

    async def _end_utterance(self) -> None:
        self._in_speech = False
        text, length = self._text, self._length - self._silence
        eot = self.stt.capabilities.turn_detection
        if self.stt.latency > 0:
            task = asyncio.create_task(self._emit_final_later(text, length, eot))
            self._delayed.add(task)
            task.add_done_callback(self._delayed.discard)
        else:
            await self._emit_final(text, length, eot)

    async def _emit_final_later(self, text: str, length: float, end_of_turn: bool) -> None:
        await asyncio.sleep(self.stt.latency)
        await self._emit_final(text, length, end_of_turn)

    async def _emit_final(self, text: str, length: float, end_of_turn: bool) -> None:
        await self._emit(STTEvent("final", text, language=self.language, audio_duration=length))
        self.stt.finals.append(text)
        if end_of_turn:
            await self._emit(STTEvent("end_of_turn", language=self.language))


class FakeSTT(STT):
    """Streaming fake STT. ``script`` selects scripted mode; without it the STT is manual.

    ``turn_detection`` makes every final come with an ``end_of_turn`` event (and says so in
    `capabilities`); ``latency`` delays finals by that many seconds; ``error`` makes every
    `push` raise it.
    """

    def __init__(
        self,
        script: Sequence[str] | None = None,
        *,
        turn_detection: bool = False,
        interim_results: bool = True,
        threshold: float = 0.01,
        min_silence: float = 0.3,
        seconds_per_word: float = 0.15,
        latency: float = 0.0,
        sample_rate: int = 16000,
        languages: Sequence[str] = ("en",),
        error: BaseException | None = None,
    ) -> None:
        self.scripted = script is not None
        self.capabilities = STTCapabilities(
            streaming=True,
            interim_results=bool(interim_results) and self.scripted,
            turn_detection=bool(turn_detection),
            sample_rate=int(sample_rate),
            languages=tuple(languages),
        )
        self.threshold = float(threshold)
        self.min_silence = float(min_silence)
        self.seconds_per_word = float(seconds_per_word)
        self.latency = float(latency)
        self.error = error
        self.streams: list[FakeSTTStream] = []
        self.finals: list[str] = []  # every final text emitted, in order
        self.warmed_up = False
        self.closed = False
        self._script = _Script(script or ())
        self._opened: Waiters[FakeSTTStream] = Waiters()

    def stream(self, *, language: str | None = None) -> FakeSTTStream:
        stream = FakeSTTStream(self, language)
        self.streams.append(stream)
        self._opened.notify(stream)
        return stream

    @property
    def current_stream(self) -> FakeSTTStream | None:
        """The newest stream that is still open."""
        for stream in reversed(self.streams):
            if not stream.closed:
                return stream
        return None

    async def wait_for_stream(
        self,
        timeout: float | None = 10.0,
    ) -> FakeSTTStream:
        """The newest open stream, waiting for the engine to open one."""
        stream = self.current_stream
        if stream is not None:
            return stream
        return await self._opened.wait(lambda s: True, timeout, "an STT stream to open")

    async def say(
        self,
        text: str,
        *,
        end_of_turn: bool = True,
        speech_started: bool = False,
        partials: bool = False,
    ) -> None:
        """`FakeSTTStream.say` on the newest open stream (waits for one)."""
        stream = await self.wait_for_stream()
        await stream.say(
            text, end_of_turn=end_of_turn, speech_started=speech_started, partials=partials
        )

    async def inject(self, event: STTEvent) -> None:
        """`FakeSTTStream.inject` on the newest open stream (waits for one)."""
        await (await self.wait_for_stream()).inject(event)

    async def warm_up(self) -> None:
        self.warmed_up = True

    async def aclose(self) -> None:
        self.closed = True
        for stream in self.streams:
            await stream.aclose()


class FakeBatchSTT(BatchSTT):
    """Batch fake: each `recognize` call returns the next script line (``utterance N`` after).

    Records every utterance it was given in ``utterances``.
    """

    def __init__(
        self,
        script: Sequence[str] = (),
        *,
        latency: float = 0.0,
        sample_rate: int = 16000,
        error: BaseException | None = None,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.latency = float(latency)
        self.error = error
        self.utterances: list[AudioFrame] = []
        self.texts: list[str] = []
        self.warmed_up = False
        self.closed = False
        self._script = _Script(script)

    async def recognize(self, audio: AudioFrame, *, language: str | None = None) -> str:
        self.utterances.append(audio)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if self.error is not None:
            raise self.error
        text = self._script.next()
        self.texts.append(text)
        return text

    async def warm_up(self) -> None:
        self.warmed_up = True

    async def aclose(self) -> None:
        self.closed = True
