"""Engine overhead of one turn: final transcript in → first agent audio frame at the Edge.

Every part is a zero-latency fake, so what is left is the engine's own cost:

- STT: `FakeSTT(turn_detection=True)` in manual mode. Each turn the bench calls
  ``stream.say(text)``, which hands the engine a ``final`` and an ``end_of_turn`` event
  together (no VAD, no endpointing wait). The clock starts when the stream hands over the
  final (`FakeSTTStream.emitted[...].at`, a ``perf_counter`` reading).
- LLM: `FakeLLM` streaming 20 tokens in two sentences, ``tokens_per_second=0``.
- TTS: `FakeTTS` returning 200 ms of 24 kHz audio per sentence (10 frames of 20 ms), no delay.
- Edge: `InMemoryEdge(realtime_playout=False)`, whose output records ``perf_counter`` at every
  accepted write. Output at 24 kHz (no resampling) and at 48 kHz (the playout resamples with
  soxr, as on a real WebRTC edge), measured separately.

Each reply is allowed to finish (the agent's turn ends) and the bench then idles 5 ms before
the next turn, as a user would before speaking again.

Baseline in the same run, the floor the engine is held to (at most 2x its p50): a plain-asyncio
pipeline doing the same work with the same fakes and Edge: one task reads the STT stream, adds
the turn to a history, streams the LLM on a copy of it through the same sentence splitter into
a queue; a second task synthesizes each sentence and writes its frames (resampled like the
engine's playout when the Edge runs at 48 kHz). No policy, no events, no barge-in. Plain and
engine turns alternate (one of each, then the next), so both see the same machine noise. A bare
asyncio hand-off (``queue.put`` → ``get`` in another task) is printed too, for scale.

Run: ``python bench/turn_overhead.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from _common import Summary, bar, header, parse_args, start_session
from parley.audio import AudioResampler
from parley.chat import ChatContext
from parley.edge import Call, User
from parley.events import AgentTurnEnded, TurnMetricsReady
from parley.llm import Usage
from parley.metrics import TurnMetrics
from parley.pipeline import CascadingPipeline
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge, Reply, tokenize
from parley.text import SentenceSplitter

REPLY = (
    "It is sunny and warm in the city today. "
    "Bring your sunglasses and some water if you go out later."
)
assert len(tokenize(REPLY)) == 20, "the reply must stream exactly 20 tokens"

IDLE_BETWEEN_TURNS = 0.005  # seconds
TTS_SECONDS_PER_SENTENCE = 0.2
TTS_SAMPLE_RATE = 24000


@dataclass(slots=True)
class EngineRun:
    output_rate: int
    overhead_ms: list[float] = field(default_factory=list)
    turns: list[TurnMetrics] = field(default_factory=list)
    frames_per_turn: int = 0


# With usage given, the fake does not estimate it from the whole history (an O(history) word
# count per reply that would grow with the turn count); a real provider reports it too.
_REPLY = Reply(REPLY, usage=Usage(input_tokens=100, output_tokens=20))


def _reply(_: ChatContext) -> Reply:
    return _REPLY


Turn = Callable[[int], Awaitable[float]]  # runs turn N, returns final → first frame in ms


async def engine_rig(
    output_rate: int, run: EngineRun
) -> tuple[Turn, Callable[[], Awaitable[None]]]:
    edge = InMemoryEdge(output_sample_rate=output_rate, realtime_playout=False, record_frames=False)
    stt = FakeSTT(turn_detection=True)
    pipeline = CascadingPipeline(
        stt=stt,
        llm=FakeLLM(respond=_reply, tokens_per_second=0),
        tts=FakeTTS(seconds_per_call=TTS_SECONDS_PER_SENTENCE, sample_rate=TTS_SAMPLE_RATE),
    )
    session, connection = await start_session(pipeline, edge, f"turn-overhead-{output_rate}")
    output = connection.audio_output
    stream = await stt.wait_for_stream()
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def on_ended(_: AgentTurnEnded) -> None:
        if not ended.done():
            ended.set_result(None)

    session.events.subscribe(on_ended, AgentTurnEnded)
    session.events.subscribe(lambda e: run.turns.append(e.metrics), TurnMetricsReady)

    async def turn(number: int) -> float:
        nonlocal ended
        ended = loop.create_future()
        written = len(output.write_times)
        emitted = len(stream.emitted)
        await stream.say(f"question number {number}")
        handed_over = stream.emitted[emitted].at  # the final transcript
        await asyncio.wait_for(ended, 5.0)
        run.frames_per_turn = len(output.write_times) - written
        return (output.write_times[written] - handed_over) * 1000

    return turn, session.close


async def plain_rig(output_rate: int) -> tuple[Turn, Callable[[], Awaitable[None]]]:
    """The same turns through a hand-written two-task asyncio pipeline (the floor)."""
    edge = InMemoryEdge(output_sample_rate=output_rate, realtime_playout=False, record_frames=False)
    connection = await edge.join(Call("default", f"plain-{output_rate}", edge), User())
    output = connection.audio_output
    stt = FakeSTT(turn_detection=True)
    stream = stt.stream()
    llm = FakeLLM(respond=_reply, tokens_per_second=0)
    tts = FakeTTS(seconds_per_call=TTS_SECONDS_PER_SENTENCE, sample_rate=TTS_SAMPLE_RATE)
    history = ChatContext()
    sentences: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    async def think() -> None:
        async for event in stream:
            if event.type != "final" or not event.text:
                continue
            history.add("user", event.text)
            splitter = SentenceSplitter()
            reply = ""
            async for chunk in llm.chat(history.copy(), []):
                reply += chunk.text
                for sentence in splitter.push(chunk.text):
                    sentences.put_nowait(sentence)
            for sentence in splitter.flush():
                sentences.put_nowait(sentence)
            history.add("assistant", reply)
            sentences.put_nowait(None)

    async def speak() -> None:
        resampler: AudioResampler | None = None  # one filter per reply, drained at its end
        while True:
            sentence = await sentences.get()
            if sentence is None:
                for piece in resampler.flush() if resampler else []:
                    await output.write(piece)
                resampler = None
                ended.set_result(None)
                continue
            if resampler is None and output_rate != TTS_SAMPLE_RATE:
                resampler = AudioResampler(output_rate, 1, "int16")
            async for frame in tts.synthesize(sentence):
                for piece in resampler.push(frame) if resampler else [frame]:
                    await output.write(piece)

    tasks = [asyncio.create_task(think()), asyncio.create_task(speak())]

    async def turn(number: int) -> float:
        nonlocal ended
        ended = loop.create_future()
        written = len(output.write_times)
        emitted = len(stream.emitted)
        await stream.say(f"question number {number}")
        handed_over = stream.emitted[emitted].at
        await asyncio.wait_for(ended, 5.0)
        await output.wait_for_playout()
        return (output.write_times[written] - handed_over) * 1000

    async def close() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await connection.leave()

    return turn, close


async def paired_turns(output_rate: int, turns: int, warmup: int) -> tuple[list[float], EngineRun]:
    """Plain and engine turns alternate, so both see the same machine noise."""
    run = EngineRun(output_rate)
    plain_turn, plain_close = await plain_rig(output_rate)
    engine_turn, engine_close = await engine_rig(output_rate, run)
    plain: list[float] = []
    try:
        for number in range(warmup + turns):
            plain_ms = await plain_turn(number)
            await asyncio.sleep(IDLE_BETWEEN_TURNS)
            engine_ms = await engine_turn(number)
            await asyncio.sleep(IDLE_BETWEEN_TURNS)
            if number >= warmup:
                plain.append(plain_ms)
                run.overhead_ms.append(engine_ms)
    finally:
        await engine_close()
        await plain_close()
    run.turns = run.turns[warmup:]
    return plain, run


async def bare_handoff(samples: int) -> list[float]:
    """queue.put → get in another task → append to a list; the floor for any async engine."""
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    arrivals: list[float] = []

    async def consumer() -> None:
        while await queue.get() is not None:
            arrivals.append(time.perf_counter())

    task = asyncio.create_task(consumer())
    await asyncio.sleep(0)
    delays: list[float] = []
    for _ in range(samples):
        sent = time.perf_counter()
        queue.put_nowait(sent)
        await asyncio.sleep(IDLE_BETWEEN_TURNS)
        delays.append((arrivals[-1] - sent) * 1000)
    queue.put_nowait(None)
    await task
    return delays


def _stage_line(turns: list[TurnMetrics]) -> str:
    """Medians of the engine's own stamps: final → commit → LLM token → TTS audio → sent."""

    def ms(pairs: list[tuple[float | None, float | None]]) -> float:
        spans = [(b - a) * 1000 for a, b in pairs if a is not None and b is not None]
        return Summary.of(spans).p50

    commit = ms([(t.final_transcript, t.turn_committed) for t in turns])
    llm = ms([(t.turn_committed, t.llm_first_token) for t in turns])
    tts = ms([(t.llm_first_token, t.tts_first_audio) for t in turns])
    sent = ms([(t.tts_first_audio, t.first_audio_sent) for t in turns])
    return (
        f"stages (p50, engine stamps): final→commit {commit:.3f} ms, commit→LLM first token "
        f"{llm:.3f} ms, →TTS first audio {tts:.3f} ms, →first frame sent {sent:.3f} ms"
    )


async def main(quick: bool) -> None:
    turns, warmup = (200, 10) if quick else (1000, 20)
    header(f"turn overhead: final transcript → first agent audio frame at the Edge ({turns} turns)")
    print(
        "   fakes: STT owns end of turn (final + end_of_turn together, no VAD), LLM 20 tokens / "
        "2 sentences at 0 s/token, TTS 200 ms of 24 kHz per sentence; each reply plays to its "
        f"end, then {IDLE_BETWEEN_TURNS * 1000:.0f} ms idle; gc enabled"
    )
    handoff = Summary.of(await bare_handoff(turns))
    print(f"   bare asyncio hand-off (for scale) {handoff.line()}")
    results: list[tuple[int, Summary, Summary]] = []
    for rate in (24000, 48000):
        gc.collect()
        plain, run = await paired_turns(rate, turns, warmup)
        floor = Summary.of(plain)
        label = "no resampling" if rate == TTS_SAMPLE_RATE else "resampled 24→48 kHz"
        print(f"   plain asyncio, {rate // 1000} kHz ({label:<19s}) {floor.line()}")
        summary = Summary.of(run.overhead_ms)
        results.append((rate, summary, floor))
        print(f"   engine, Edge output {rate // 1000} kHz ({label:<19s}) {summary.line()}")
        print(f"      {_stage_line(run.turns)}; {run.frames_per_turn} frames/turn")
        head = Summary.of(run.overhead_ms[: turns // 4]).p50
        tail = Summary.of(run.overhead_ms[-(turns // 4) :]).p50
        print(f"      p50 of first vs last quarter of turns: {head:.3f} / {tail:.3f} ms")
    for rate, summary, floor in results:
        print(f"   -- {rate // 1000} kHz output")
        bar("engine p50 / plain asyncio p50", summary.p50 / floor.p50, 2.0, "x")
        bar("p50", summary.p50, 0.5, "ms")
        bar("p95", summary.p95, 1.0, "ms")
        print(
            f"   (p99 {summary.p99:.3f} ms; engine p95 / plain asyncio p95 = "
            f"{summary.p95 / floor.p95:.1f}x; engine p50 / bare hand-off p50 = "
            f"{summary.p50 / handoff.p50:.1f}x)"
        )


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0], "200 turns instead of 1000")
    asyncio.run(main(args.quick))
