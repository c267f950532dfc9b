"""Barge-in: from the user's speech onset (as the VAD reports it) to the Edge output flush,
and how much of the interrupted reply still reaches the Edge after the flush.

The agent speaks a long reply (`session.say`, `FakeTTS` at 24 kHz, 50 ms of audio per
character) on an `InMemoryEdge` that plays out in real time with 1 s of buffer. After 0.1 to
0.4 s of agent audio (seeded random) the user talks: real-time 16 kHz speech frames, which the
`FakeVAD` reports as ``speech_started`` after its 64 ms minimum, then silence. A scripted
`FakeSTT` transcribes the user, and the agent answers ("Okay.") before the next round.

- Onset: the bench's VAD wraps `FakeVADStream.push` and stamps ``perf_counter`` when a push
  returns ``speech_started``, before the engine sees the event.
- Flush: the in-memory output records ``perf_counter`` of every flush.
- Stale frames: the bench's TTS tags every frame it makes with its sentence; a stale frame is a
  frame written to the Edge after the flush whose sentence belongs to the interrupted reply (the
  Edge runs at the TTS's 24 kHz, so frames reach it as the very objects the TTS made).

Three configurations, each on a fresh session:

1. ``immediate``: ``InterruptionOptions(min_duration=0)``: speech onset interrupts at once.
2. ``default``: ``InterruptionOptions()``: the agent pauses (flush) at onset and the pause
   becomes an interruption after 0.5 s of user speech.
3. ``false interruption``: default options, the user only coughs (0.15 s, no words). The agent
   must resume where it stopped (the flushed audio is replayed) and finish the reply; the bench
   checks that the reply ends not interrupted, with the whole text heard, and reports when
   audio resumed relative to the VAD's speech end (policy: ``false_interruption_timeout``).

The endpointing delay is set to 0.1 s to keep rounds short (it is policy, not measured here).
Run: ``python bench/barge_in.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from _common import Summary, bar, header, load_note, parse_args, start_session
from parley.chat import ChatContext
from parley.events import AgentTurnEnded, Interrupted
from parley.frames import AudioFrame
from parley.pipeline import CascadingPipeline
from parley.policy import InterruptionOptions, TurnOptions
from parley.session import AgentSession
from parley.speech import SpeechHandle
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryConnection, InMemoryEdge
from parley.testing.vad import FakeVADStream
from parley.text import split_sentences
from parley.vad import VADCapabilities, VADEvent, VADOptions

SECONDS_PER_CHAR = 0.05
OUTPUT_RATE = 24000


class StampingVAD(FakeVAD):
    """`FakeVAD` whose streams record when each event was reported (``perf_counter``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[tuple[str, float]] = []

    def stream(self) -> FakeVADStream:
        stream = _StampingStream(self.capabilities, self.options, self.threshold, self.stamps)
        self.streams.append(stream)
        return stream


class _StampingStream(FakeVADStream):
    def __init__(
        self,
        capabilities: VADCapabilities,
        options: VADOptions,
        threshold: float,
        stamps: list[tuple[str, float]],
    ) -> None:
        super().__init__(capabilities, options, threshold)
        self._stamps = stamps

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        events = super().push(frame)
        if events:
            now = time.perf_counter()
            self._stamps.extend((event.type, now) for event in events)
        return events


class TaggingTTS(FakeTTS):
    """`FakeTTS` that remembers which sentence each frame it produced belongs to."""

    def __init__(self) -> None:
        super().__init__(sample_rate=OUTPUT_RATE, seconds_per_char=SECONDS_PER_CHAR)
        self.sentence_of: dict[int, str] = {}
        self._alive: list[AudioFrame] = []  # keeps ids unique for the whole run

    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        return self._tagged(text, super().synthesize(text))

    async def _tagged(
        self, text: str, frames: AsyncIterator[AudioFrame]
    ) -> AsyncIterator[AudioFrame]:
        try:
            async for frame in frames:
                self.sentence_of[id(frame)] = text
                self._alive.append(frame)
                yield frame
        finally:
            closer = getattr(frames, "aclose", None)
            if closer is not None:
                await closer()


@dataclass(slots=True)
class Rig:
    session: AgentSession
    connection: InMemoryConnection
    vad: StampingVAD
    tts: TaggingTTS
    ended: asyncio.Queue[AgentTurnEnded]
    interrupted: list[Interrupted] = field(default_factory=list)


def _okay(_: ChatContext) -> str:
    return "Okay."


async def _rig(name: str, options: InterruptionOptions, script: list[str]) -> Rig:
    vad = StampingVAD()
    tts = TaggingTTS()
    pipeline = CascadingPipeline(
        stt=FakeSTT(script),
        llm=FakeLLM(respond=_okay),
        tts=tts,
        vad=vad,
        turn=TurnOptions(min_endpointing_delay=0.1),
        interruption=options,
    )
    edge = InMemoryEdge(output_sample_rate=OUTPUT_RATE, realtime_playout=True, max_buffer=1.0)
    session, connection = await start_session(pipeline, edge, f"barge-in-{name}")
    ended: asyncio.Queue[AgentTurnEnded] = asyncio.Queue()
    rig = Rig(session, connection, vad, tts, ended)
    session.events.subscribe(ended.put_nowait, AgentTurnEnded)
    session.events.subscribe(rig.interrupted.append, Interrupted)
    return rig


def _long_reply(number: int) -> str:
    return (
        f"This is reply number {number}, and it goes on for quite a while. "
        f"The user has plenty of time to cut in during reply {number}. "
        f"There is still more to say after that in reply {number}, and then some more."
    )


def _short_reply(number: int) -> str:
    return f"Reply {number} is short. It ends soon after."


@dataclass(slots=True)
class Round:
    onset_to_flush_ms: float
    stale_frames: int
    dropped_seconds: float
    interrupted: bool


async def _speak_until_barge_in(rig: Rig, text: str, rng: random.Random) -> SpeechHandle:
    """Start ``text`` and return once 0.1 to 0.4 s of it has been playing."""
    before = time.perf_counter()
    handle = rig.session.say(text)
    await rig.connection.audio_output.wait_for_audio(since=before)
    await asyncio.sleep(rng.uniform(0.1, 0.4))
    return handle


async def barge_in_round(rig: Rig, number: int, user_seconds: float, rng: random.Random) -> Round:
    text = _long_reply(number)
    own = set(split_sentences(text))
    output = rig.connection.audio_output
    handle = await _speak_until_barge_in(rig, text, rng)
    stamps = len(rig.vad.stamps)
    await rig.connection.push_speech(user_seconds, realtime=True)
    await rig.connection.push_silence(0.4, realtime=True)
    await asyncio.wait_for(handle, 10.0)
    # The agent answers the user; wait for that reply to end before the next round.
    while (await asyncio.wait_for(rig.ended.get(), 10.0)).speech_id == handle.id:
        pass
    onset = next(at for kind, at in rig.vad.stamps[stamps:] if kind == "speech_started")
    flush = next(f for f in output.flushes if f.at >= onset)
    stale = [
        w for w in output.writes if w.at > flush.at and rig.tts.sentence_of.get(id(w.frame)) in own
    ]
    return Round(
        (flush.at - onset) * 1000,
        len(stale),
        flush.dropped,
        handle.interrupted,
    )


@dataclass(slots=True)
class Resume:
    resumed_after_s: float  # from the VAD's speech end to the first write after the flush
    replayed_seconds: float
    dropped_seconds: float
    onset_to_flush_ms: float
    finished: bool  # ended not interrupted, whole text heard, every frame played exactly once
    false_event: bool  # an Interrupted(false_interruption=True) event for this reply


async def false_interruption_round(rig: Rig, number: int, rng: random.Random) -> Resume:
    text = _short_reply(number)
    output = rig.connection.audio_output
    writes, played = len(output.writes), output.seconds_played
    handle = await _speak_until_barge_in(rig, text, rng)
    stamps = len(rig.vad.stamps)
    events = len(rig.interrupted)
    await rig.connection.push_speech(0.15, realtime=True)  # a cough
    await rig.connection.push_silence(0.5, realtime=True)
    await asyncio.wait_for(handle, 20.0)
    while (await asyncio.wait_for(rig.ended.get(), 10.0)).speech_id != handle.id:
        pass
    onset = next(at for kind, at in rig.vad.stamps[stamps:] if kind == "speech_started")
    ended = next(at for kind, at in rig.vad.stamps[stamps:] if kind == "speech_ended")
    flush = next(f for f in output.flushes if f.at >= onset)
    after = [w for w in output.writes[writes:] if w.at > flush.at]
    seen: set[int] = set()
    replayed = 0.0
    for w in output.writes[writes:]:
        if id(w.frame) in seen:
            replayed += w.frame.duration
        seen.add(id(w.frame))
    await output.wait_for_playout()
    heard = output.seconds_played - played
    expected = sum(rig.tts.duration_for(piece) for piece in split_sentences(text))
    # Every frame of the reply played exactly once: what was flushed came back, nothing twice.
    finished = (
        not handle.interrupted and handle.heard_text == text and abs(heard - expected) < 0.011
    )
    false_event = any(
        e.speech_id == handle.id and e.false_interruption for e in rig.interrupted[events:]
    )
    return Resume(
        (after[0].at - ended) if after else float("nan"),
        replayed,
        flush.dropped,
        (flush.at - onset) * 1000,
        finished,
        false_event,
    )


async def run_barge_in(
    name: str, options: InterruptionOptions, rounds: int, user_seconds: float
) -> list[Round]:
    rig = await _rig(name, options, ["wait, stop there"] * (rounds + 5))
    rng = random.Random(7)
    try:
        return [await barge_in_round(rig, number, user_seconds, rng) for number in range(rounds)]
    finally:
        await rig.session.close()


async def run_false(rounds: int) -> list[Resume]:
    rig = await _rig("false", InterruptionOptions(), [""] * (rounds + 5))
    rng = random.Random(11)
    try:
        return [await false_interruption_round(rig, number, rng) for number in range(rounds)]
    finally:
        await rig.session.close()


def _report(name: str, results: list[Round]) -> tuple[Summary, int]:
    latency = Summary.of([r.onset_to_flush_ms for r in results])
    stale = sum(r.stale_frames for r in results)
    interrupted = sum(r.interrupted for r in results)
    dropped = Summary.of([r.dropped_seconds for r in results])
    print(f"   {name}: onset → flush {latency.line()}")
    print(
        f"      stale frames after the flush: {stale} in {len(results)} rounds; "
        f"replies interrupted {interrupted}/{len(results)}; audio dropped by the flush "
        f"p50 {dropped.p50:.2f} s; {load_note()}"
    )
    return latency, stale


async def main(quick: bool) -> None:
    immediate_rounds, default_rounds, false_rounds = (50, 20, 10) if quick else (100, 50, 20)
    header("barge-in: VAD speech onset → Edge output flush, and stale frames after it")
    print("   Edge 24 kHz real-time playout, 1 s buffer; user speech pushed in real time")
    immediate = _report(
        f"immediate (min_duration=0), {immediate_rounds} rounds, user speaks 0.3 s",
        await run_barge_in(
            "immediate", InterruptionOptions(min_duration=0.0), immediate_rounds, 0.3
        ),
    )
    default = _report(
        f"default InterruptionOptions, {default_rounds} rounds, user speaks 0.7 s",
        await run_barge_in("default", InterruptionOptions(), default_rounds, 0.7),
    )
    resumes = await run_false(false_rounds)
    timeout = InterruptionOptions().false_interruption_timeout
    resumed = Summary.of([r.resumed_after_s * 1000 for r in resumes])
    onset = Summary.of([r.onset_to_flush_ms for r in resumes])
    finished = sum(r.finished for r in resumes)
    flagged = sum(r.false_event for r in resumes)
    replay = sum(r.replayed_seconds for r in resumes)
    dropped = sum(r.dropped_seconds for r in resumes)
    print(f"   false interruption (0.15 s cough, default options), {false_rounds} rounds:")
    print(f"      onset → flush (pause) {onset.line()}")
    print(
        f"      replies that ended uninterrupted with every frame played exactly once: "
        f"{finished}/{len(resumes)}; "
        f"Interrupted(false_interruption=True) events: {flagged}/{len(resumes)}"
    )
    print(
        f"      audio resumed after the VAD's speech end: {resumed.line()} "
        f"(policy false_interruption_timeout = {timeout:g} s)"
    )
    print(f"      flushed {dropped:.2f} s in total, replayed {replay:.2f} s on resume")
    for name, (latency, stale) in (("immediate", immediate), ("default", default)):
        print(f"   -- {name}")
        bar("onset → flush max", latency.max, 25.0, "ms")
        bar("stale frames after the flush", float(stale), 0.0, "frames")
    works = finished == len(resumes) and flagged == len(resumes)
    print(f"   false interruption resume: {'WORKS' if works else 'BROKEN'}")


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], "fewer rounds (50/20/10 instead of 100/50/20)")
    asyncio.run(main(args.quick))
