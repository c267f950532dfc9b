"""Streaming speech-to-text from a batch recognizer, cut into utterances by a VAD.

`VADSegmentedSTT` wraps a `BatchSTT` (e.g. Whisper) and a `VAD`. Its streams run the VAD on
every pushed frame, keep a short pre-roll so the first syllable is not clipped, buffer the
speech, and hand each finished segment to ``batch.recognize``. Recognition runs as one task
per segment, so pushing frames never waits for it; events still come out in segment order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from parley._lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

from parley.audio import AudioResampler
from parley.frames import AudioFrame
from parley.stt import STT, BatchSTT, STTCapabilities, STTEvent, STTStream
from parley.vad import VAD, VADEvent, VADStream

logger = logging.getLogger(__name__)

# Audio kept while nobody speaks, beyond the pre-roll: the VAD reports a start only after
# `min_speech` of speech plus a partly filled window, so the start lies that far back.
_START_LOOKBACK = 1.0


class VADSegmentedSTT(STT):
    """An `STT` that transcribes VAD-delimited utterances with a batch recognizer.

    ``pre_roll`` seconds of audio before the detected start are included in each segment;
    speech longer than ``max_segment`` seconds is cut and recognized in pieces. With
    ``speculate`` recognition starts as soon as speech goes quiet, during the VAD's silence
    wait; its text is published at once as a ``partial`` and becomes the ``final`` if the
    quiet was the end (a pause mid-sentence costs one wasted decode). The VAD is not closed
    by `aclose` (the session may share it); the batch recognizer is.
    """

    def __init__(
        self,
        batch: BatchSTT,
        vad: VAD,
        *,
        pre_roll: float = 0.2,
        max_segment: float = 30.0,
        speculate: bool = True,
    ) -> None:
        if pre_roll < 0:
            raise ValueError(f"pre_roll must be >= 0 seconds, got {pre_roll}")
        if max_segment <= pre_roll:
            raise ValueError(f"max_segment ({max_segment}s) must be longer than pre_roll")
        self.batch = batch
        self.vad = vad
        self.pre_roll = pre_roll
        self.max_segment = max_segment
        self.speculate = speculate
        self.capabilities = STTCapabilities(
            streaming=True,
            interim_results=False,
            turn_detection=False,
            sample_rate=batch.sample_rate,
            languages=batch.languages,
        )

    def stream(self, *, language: str | None = None) -> STTStream:
        return VADSegmentedStream(self, language)

    async def warm_up(self) -> None:
        await asyncio.gather(self.batch.warm_up(), self.vad.warm_up())

    async def aclose(self) -> None:
        await self.batch.aclose()


class _Timeline:
    """Mono int16 samples with their stream time, trimmed from the front as they age."""

    def __init__(self, sample_rate: int) -> None:
        self.rate = sample_rate
        self.start = 0.0  # stream time of the first kept sample
        self._chunks: deque[npt.NDArray[np.int16]] = deque()
        self._samples = 0

    @property
    def end(self) -> float:
        return self.start + self._samples / self.rate

    def append(self, data: npt.NDArray[np.int16]) -> None:
        if len(data):
            self._chunks.append(data)
            self._samples += len(data)

    def trim_before(self, time: float) -> None:
        """Drop whole chunks that end before ``time``."""
        while self._chunks and self.start + len(self._chunks[0]) / self.rate <= time:
            dropped = self._chunks.popleft()
            self._samples -= len(dropped)
            self.start += len(dropped) / self.rate

    def slice(self, begin: float, end: float) -> npt.NDArray[np.int16]:
        data = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        first = max(0, round((begin - self.start) * self.rate))
        last = max(first, round((end - self.start) * self.rate))
        return data[first:last]


class VADSegmentedStream(STTStream):
    """One stream. ``on_vad`` receives every VAD event as it happens, in `push`: an engine that
    needs speech start and end reads them here instead of running the same VAD again (one VAD
    inference per frame, one clock)."""

    def __init__(self, owner: VADSegmentedSTT, language: str | None) -> None:
        super().__init__()
        self.on_vad: Callable[[VADEvent], None] | None = None
        self._owner = owner
        self._language = language
        self._rate = owner.batch.sample_rate
        self._vad: VADStream = owner.vad.stream()
        self._resampler = AudioResampler(self._rate, 1, "int16")
        self._timeline = _Timeline(self._rate)
        self._segment_start: float | None = None  # set while inside speech
        self._recognized_until = 0.0  # a pre-roll never repeats audio already recognized
        self._tail: asyncio.Task[None] | None = None  # last emitting task; keeps order
        self._tasks: set[asyncio.Future[Any]] = set()
        # Recognition started when the VAD went quiet inside speech: (audio end, task).
        self._guess: tuple[AudioFrame, asyncio.Task[str | None]] | None = None
        self._used: asyncio.Task[str | None] | None = None  # the guess a final was built on

    async def push(self, frame: AudioFrame) -> None:
        if self._closed:
            raise RuntimeError("push() on a closed STT stream")
        events = self._vad.push(frame)
        if events and self.on_vad is not None:
            for event in events:
                self.on_vad(event)
        for piece in self._to_stream_format(frame):
            self._timeline.append(piece.data[:, 0])
        now = self._timeline.end
        for event in events:
            if event.type == "speech_started":
                self._segment_start = max(
                    self._timeline.start,
                    self._recognized_until,
                    event.timestamp - self._owner.pre_roll,
                )
                self._chain(self._emit(STTEvent("speech_started")))
            elif self._segment_start is not None:
                self._cut(self._segment_start, now, speech_ended=True)
                self._segment_start = None
        self._speculate(now)
        if self._segment_start is not None and now - self._segment_start >= self._owner.max_segment:
            self._cut(self._segment_start, now)
            self._segment_start = now
        if self._segment_start is None:
            self._timeline.trim_before(now - self._owner.pre_roll - _START_LOOKBACK)
        else:
            self._timeline.trim_before(self._segment_start)

    async def flush(self) -> None:
        """Recognize the speech heard so far, and wait until every pending final is emitted."""
        if self._segment_start is not None:
            self._cut(self._segment_start, self._timeline.end)
            self._segment_start = None
            self._vad.reset()  # the next speech is a new segment with its own start event
        if self._tail is not None:
            # `wait`, unlike `gather`, leaves the tasks running if this caller is cancelled.
            await asyncio.wait({self._tail})

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().aclose()

    # --- internals ----------------------------------------------------------------------------

    def _to_stream_format(self, frame: AudioFrame) -> list[AudioFrame]:
        if frame.sample_rate == self._rate and frame.channels == 1:
            return [frame.to_int16()]
        return self._resampler.push(frame)

    def _speculate(self, now: float) -> None:
        """Start recognizing when speech goes quiet, during the VAD's silence wait; if the
        quiet turns out to be the end of speech, that result is used (saves one decode of
        latency), otherwise it is dropped."""
        start = self._segment_start
        if start is None or not self._owner.speculate:
            return
        if not self._vad.pausing:
            self._drop_guess()
            return
        if self._guess is None:
            segment = AudioFrame(self._timeline.slice(start, now), self._rate, start)
            if segment.samples:
                task = asyncio.create_task(self._recognize(segment))
                self._track(task)
                self._guess = guess = (segment, task)
                # Publish it as an interim result: the engine can prime the LLM meanwhile.
                self._chain(self._emit_guess(guess))

    async def _emit_guess(self, guess: tuple[AudioFrame, asyncio.Task[str | None]]) -> None:
        try:
            text = await asyncio.shield(guess[1])
        except asyncio.CancelledError:
            if guess[1].cancelled():
                return  # speech resumed: the guess was dropped
            raise
        if text and text.strip() and (self._guess is guess or self._used is guess[1]):
            await self._emit(STTEvent("partial", text.strip(), language=self._language))

    def _drop_guess(self) -> None:
        if self._guess is not None:
            self._guess[1].cancel()
            self._guess = None

    def _cut(self, begin: float, end: float, *, speech_ended: bool = False) -> None:
        samples = self._timeline.slice(begin, end)
        self._recognized_until = end
        guess, self._guess = self._guess, None
        if not len(samples):
            if guess is not None:
                guess[1].cancel()
            return
        segment = AudioFrame(samples, self._rate, begin)
        if guess is not None and speech_ended:
            # The guess survived: the stream has paused since its audio ended (a guess is
            # dropped when speech resumes), so it holds all the speech of this segment. It may
            # end before the VAD's end timestamp: an energy pause is seen before the model's
            # probability falls (`VADOptions.pause_below_peak_db`).
            segment, recognition = guess
            self._used = recognition
        else:
            if guess is not None:
                guess[1].cancel()
            # Recognition starts at once (remote recognizers may overlap); emission waits.
            recognition = asyncio.create_task(self._recognize(segment))
            self._track(recognition)
        self._chain(self._emit_final(recognition, segment.duration))

    async def _recognize(self, segment: AudioFrame) -> str | None:
        try:
            return await self._owner.batch.recognize(segment, language=self._language)
        except Exception:
            logger.exception(
                "speech recognition failed for a %.2f s segment at t=%.2f s; it is dropped",
                segment.duration,
                segment.timestamp,
            )
            return None

    async def _emit_final(self, recognition: asyncio.Future[str | None], duration: float) -> None:
        try:
            text = await recognition
        except asyncio.CancelledError:
            recognition.cancel()
            raise
        if text is not None and text.strip():
            await self._emit(
                STTEvent("final", text.strip(), language=self._language, audio_duration=duration)
            )

    def _chain(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after everything chained before it (one task per segment or start)."""
        task = asyncio.create_task(_after(self._tail, work))
        self._tail = task
        self._track(task)

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _after(previous: asyncio.Task[None] | None, work: Coroutine[Any, Any, None]) -> None:
    try:
        if previous is not None:
            # Order only: a failed or cancelled predecessor must not stop this one.
            await asyncio.wait({previous})
    except asyncio.CancelledError:
        work.close()
        raise
    await work
