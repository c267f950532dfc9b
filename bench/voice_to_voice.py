"""Voice to voice on the offline stack: end of the user's speech → first agent audio sent.

The demo agent (`examples/demo.py`: Silero VAD, Whisper tiny.en, SmolLM2-135M on llama.cpp,
Piper, the weather tool and the demo's turn settings) runs in this process on
`parley.testing.InMemoryEdge`. A simulated microphone sends 20 ms frames of 48 kHz audio in
real time, as the WebRTC edge delivers them: silence, then a recorded question, then silence
until the agent has spoken its whole reply. The questions are spoken by Piper at start
(Whisper tiny.en mishears espeak) and are the same on every run.

Per turn it prints each stage, from the true end of speech (the last sample of the question
above the noise floor, not the VAD's decision) to the first reply frame handed to the edge:

- ``vad``:    true end of speech → VAD reports speech ended (hangover + one window)
- ``stt``:    → final transcript (Whisper decodes the segment)
- ``endp``:   → turn committed (``TurnOptions.min_endpointing_delay``)
- ``llm``:    → first LLM output (a text token, or a complete tool call)
- ``tool``:   → first text token of the answer after the tool ran (tool turns only)
- ``1st``:    → the LLM has written the first speakable piece (sentence) of the answer
- ``tts``:    → first audio (Piper renders that piece)
- ``send``:   → first frame written to the edge

then p50/p95 of each stage and of the total, and whether the bar is met (p50 ≤ 0.9 s). The
engine's own end-to-end figure (``TurnMetrics.end_to_end``) starts at the VAD decision and
is printed too. The first turn is a warm-up and is reported apart.

Run: ``python bench/voice_to_voice.py [--quick] [--turns N]`` and, to explore settings,
``--min-endpointing S --min-silence S --llm-threads N --whisper-threads N``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from _common import Summary, bar, header, load_demo, load_note
from parley.audio import resample
from parley.chat import ChatContext
from parley.events import ToolCalled, Transcript, TurnMetricsReady
from parley.flow import ConversationFlow
from parley.frames import AudioFrame, concat_audio
from parley.llm import LLMChunk
from parley.metrics import TurnMetrics
from parley.policy import TurnOptions
from parley.session import AgentSession
from parley.testing import InMemoryConnection, InMemoryEdge
from parley.text import SentenceSplitter
from parley.tools import FunctionTool
from parley.vad import VADOptions

if TYPE_CHECKING:
    from parley_llamacpp.engine import Stats

BAR_P50 = 0.9  # seconds, true end of speech → first audio sent

QUESTIONS = (
    "What is the weather in Paris?",
    "Is it raining in London right now?",
    "What is the capital of Italy?",
    "Tell me the weather in Berlin, please.",
    "Can you tell me a joke?",
    "How warm is it in Tokyo today?",
    "Who wrote Romeo and Juliet?",
    "What is the weather like in Madrid?",
    "What should I cook for dinner tonight?",
    "Do I need an umbrella in Dublin?",
    "How many legs does a spider have?",
    "What is the weather in Chicago?",
)
RATE = 48000  # what the WebRTC edge delivers
FRAME = 0.02
LEAD_SILENCE = 0.5  # before each question
AFTER_REPLY = 0.5  # silence after the agent finished speaking, before the next question
TURN_TIMEOUT = 60.0


@dataclass(slots=True)
class Clip:
    text: str
    audio: AudioFrame  # 48 kHz mono int16
    speech_end: float  # seconds from the clip start to the last sample above the noise floor


def speech_end(audio: AudioFrame, below_peak_db: float = 30.0) -> float:
    """Offset of the end of the last 10 ms block within ``below_peak_db`` of the loudest one."""
    samples = audio.to_float32().data[:, 0]
    block = audio.sample_rate // 100
    blocks = samples[: len(samples) // block * block].reshape(-1, block)
    rms = np.sqrt(np.mean(blocks * blocks, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-below_peak_db / 20))
    if not len(loud):
        raise ValueError("the clip has no speech above the noise floor")
    return float((loud[-1] + 1) * block / audio.sample_rate)


async def record_questions(texts: Sequence[str]) -> list[Clip]:
    from parley_piper.tts import PiperTTS

    tts = PiperTTS()
    clips = []
    for text in texts:
        spoken = concat_audio([frame async for frame in tts.synthesize(text)])
        audio = resample(spoken, RATE).to_int16()
        clips.append(Clip(text, audio, speech_end(audio)))
    await tts.aclose()
    return clips


class Microphone:
    """Sends 20 ms frames in real time: silence, or the clip being played."""

    def __init__(self, connection: InMemoryConnection) -> None:
        self.connection = connection
        self._step = round(RATE * FRAME)
        self._queue: list[tuple[np.ndarray[Any, Any], asyncio.Future[float], float]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def play(self, clip: Clip) -> asyncio.Future[float]:
        """Queue ``clip``; the future gets the perf_counter time its speech ended."""
        lead = np.zeros(round(LEAD_SILENCE * RATE), np.int16)
        samples = np.concatenate([lead, clip.audio.data[:, 0]])
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append((samples, done, LEAD_SILENCE + clip.speech_end))
        return done

    async def _run(self) -> None:
        silence = np.zeros(self._step, np.int16)
        start = time.perf_counter()
        current: tuple[np.ndarray[Any, Any], asyncio.Future[float], float] | None = None
        clip_start = 0.0
        offset = 0
        for index in itertools.count():
            frame_start = start + index * FRAME
            if current is None and self._queue:
                current, offset, clip_start = self._queue.pop(0), 0, frame_start
            if current is not None:
                samples, done, end = current
                chunk = samples[offset : offset + self._step]
                offset += self._step
                if len(chunk) < self._step:
                    chunk = np.concatenate([chunk, silence[: self._step - len(chunk)]])
                if offset >= len(samples):
                    done.set_result(clip_start + end)
                    current = None
            else:
                chunk = silence
            due = frame_start + FRAME  # a frame arrives once its 20 ms have been captured
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.connection.push_audio(AudioFrame(chunk, RATE, index * FRAME), due=due)


@dataclass(slots=True)
class Round:
    """One LLM call of a turn: when its first output and its first speakable piece came."""

    first_output: float | None = None
    first_piece: float | None = None  # the engine's SentenceSplitter would hand it to TTS
    stats: Stats | None = None


class TimedFlow(ConversationFlow):
    """Times each LLM round of a turn (the engine's metrics cover the first round only)."""

    def __init__(self) -> None:
        super().__init__()
        self.rounds: list[Round] = []

    def process_with_llm(
        self, ctx: ChatContext, tools: Sequence[FunctionTool], **options: Any
    ) -> AsyncIterator[LLMChunk]:
        return self._timed(super().process_with_llm(ctx, tools, **options))

    async def _timed(self, stream: AsyncIterator[LLMChunk]) -> AsyncIterator[LLMChunk]:
        timing = Round()
        self.rounds.append(timing)
        splitter = SentenceSplitter(
            first_piece_words=getattr(
                getattr(self.session, "pipeline", None), "first_piece_words", None
            )
        )
        async for chunk in stream:
            now = time.perf_counter()
            if timing.first_output is None and (chunk.text or chunk.tool_calls):
                timing.first_output = now
            if timing.first_piece is None and chunk.text and splitter.push(chunk.text):
                timing.first_piece = now
            yield chunk
        if timing.first_piece is None and splitter.flush():
            timing.first_piece = time.perf_counter()
        llm = self.session.llm if self.session is not None else None
        timing.stats = getattr(llm, "last_stats", None)


@dataclass(slots=True)
class Turn:
    clip: Clip
    true_end: float
    metrics: TurnMetrics
    rounds: list[Round]
    tools: list[ToolCalled]
    reply: str
    heard: float | None  # perf_counter time of the early (partial) transcript, if any
    stages: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.metrics
        points: list[tuple[str, float | None]] = [
            ("vad", m.end_of_speech),
            ("stt", m.final_transcript),
            ("endp", m.turn_committed),
            ("llm", m.llm_first_token),
        ]
        if self.tools and len(self.rounds) >= 2:
            points.append(("tool", self.rounds[-1].first_output))
        points += [
            ("1st", self.rounds[-1].first_piece if self.rounds else None),
            ("tts", m.tts_first_audio),
            ("send", m.first_audio_sent),
        ]
        previous: float | None = self.true_end
        for name, at in points:
            self.stages[name] = None if at is None or previous is None else at - previous
            previous = at if at is not None else previous

    @property
    def total(self) -> float | None:
        sent = self.metrics.first_audio_sent
        return None if sent is None else sent - self.true_end


STAGES = ("vad", "stt", "endp", "llm", "tool", "1st", "tts", "send")


def ms(value: float | None) -> str:
    return "    -" if value is None else f"{value * 1000:5.0f}"


def print_turn(index: int, turn: Turn) -> None:
    cells = " ".join(ms(turn.stages.get(name)) for name in STAGES)
    e2e = turn.metrics.end_to_end
    tokens = "/".join(
        f"{s.prompt_tokens - s.cached_tokens}{'r' if s.rejected_tool_call else ''}"
        for s in (r.stats for r in turn.rounds)
        if s
    )
    early = None if turn.heard is None else turn.heard - turn.true_end
    print(
        f"   {index:>2} {cells} | {ms(turn.total)} {ms(e2e)} {ms(early)} | {tokens:>7} | "
        f"{turn.metrics.user_text[:36]!r:38} → {turn.reply[:44]!r}"
    )


@dataclass(slots=True)
class Baseline:
    """The same parts called directly, one after another: no engine, no real-time input."""

    stt: list[float] = field(default_factory=list)  # Whisper on each question
    tts: list[float] = field(default_factory=list)  # Piper's first audio of each reply's 1st piece


async def measure_baseline(turns: Sequence[Turn], whisper_threads: int) -> Baseline:
    from parley_piper.tts import PiperTTS
    from parley_whisper.stt import WhisperSTT

    whisper = WhisperSTT(cpu_threads=whisper_threads)
    tts = PiperTTS()
    await asyncio.gather(whisper.warm_up(), tts.warm_up())
    baseline = Baseline()
    for turn in turns:
        started = time.perf_counter()
        await whisper.recognize(turn.clip.audio)
        baseline.stt.append(time.perf_counter() - started)
        splitter = SentenceSplitter()
        pieces = splitter.push(turn.reply) + splitter.flush()
        if pieces:
            started = time.perf_counter()
            stream = tts.synthesize(pieces[0])
            await anext(aiter(stream))
            baseline.tts.append(time.perf_counter() - started)
            await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.gather(whisper.aclose(), tts.aclose())
    return baseline


async def run(args: argparse.Namespace) -> tuple[list[Turn], Baseline]:
    demo = load_demo()
    from parley_llamacpp.llm import LlamaCppLLM
    from parley_silero.vad import SileroVAD
    from parley_whisper.stt import WhisperSTT

    turn_options: TurnOptions = demo.TURN_OPTIONS
    if args.min_endpointing is not None:
        turn_options = TurnOptions(min_endpointing_delay=args.min_endpointing)
    vad_options = VADOptions(min_silence=args.min_silence) if args.min_silence else VADOptions()
    vad = SileroVAD(vad_options)
    whisper = WhisperSTT(cpu_threads=args.whisper_threads)
    parts: dict[str, Any] = {
        "vad": vad,
        "stt": whisper,
        "llm": LlamaCppLLM(
            n_threads=args.llm_threads,
            n_threads_batch=args.llm_batch_threads or args.llm_threads,
            history_turns=None if args.llm_history < 0 else args.llm_history,
            route_tools=args.route_tools == "on",
        ),
    }
    print(
        f"   settings: {turn_options}, VAD min_silence {vad_options.min_silence} s, "
        f"whisper cpu_threads {args.whisper_threads}, llama n_threads {args.llm_threads} "
        f"(batch {args.llm_batch_threads or args.llm_threads}), route_tools {args.route_tools}"
    )
    clips = await record_questions(QUESTIONS[: args.turns + 1])
    edge = InMemoryEdge(
        input_sample_rate=RATE, output_sample_rate=RATE, record_frames=False, measure_input=True
    )
    agent = demo.build_agent(edge, turn_options=turn_options, **parts)
    flow = TimedFlow()
    session = AgentSession(agent, conversation_flow=flow)
    flow.agent = agent
    started = time.perf_counter()
    call = await agent.create_call("default", "voice-to-voice")
    connection = await edge.join(call, agent.agent_user)
    await session.start(connection)
    llm = session.llm
    assert isinstance(llm, LlamaCppLLM)
    prefix = await llm.prefill(session.chat_ctx.copy(), session.tools())
    print(
        f"   parts loaded and {prefix}-token prompt prefix cached in "
        f"{time.perf_counter() - started:.2f} s"
    )

    completed: asyncio.Queue[TurnMetrics] = asyncio.Queue()
    tools: list[ToolCalled] = []
    heard: list[float] = []
    session.events.subscribe(lambda e: completed.put_nowait(e.metrics), TurnMetricsReady)
    session.events.subscribe(tools.append, ToolCalled)
    session.events.subscribe(
        lambda e: heard.append(time.perf_counter()) if e.role == "user" and not e.final else None,
        Transcript,
    )
    microphone = Microphone(connection)
    microphone.start()
    turns: list[Turn] = []
    try:
        for clip in clips:
            flow.rounds.clear()
            tools.clear()
            heard.clear()
            true_end = await microphone.play(clip)
            metrics = await asyncio.wait_for(completed.get(), TURN_TIMEOUT)
            last = session.chat_ctx.last("assistant")
            reply = last.content if last is not None else ""
            early = heard[-1] if heard else None
            turns.append(
                Turn(clip, true_end, metrics, list(flow.rounds), list(tools), reply, early)
            )
            await asyncio.sleep(AFTER_REPLY)
            while not completed.empty():  # a question the VAD cut in two: skip the extra turn
                extra = completed.get_nowait()
                print(f"   (extra turn for {extra.user_text!r} ignored)")
    finally:
        await microphone.stop()
        await session.close()
    lateness = connection.input_lateness
    if lateness:
        print(f"   input frames read late by the agent: {Summary.of(list(lateness)).line('s')}")
    return turns, await measure_baseline(turns[1:], args.whisper_threads)


def report(turns: list[Turn], baseline: Baseline) -> None:
    print(
        f"   {'#':>2} {' '.join(f'{n:>5}' for n in STAGES)} | {'total':>5} {'eng.':>5} "
        f"{'early':>5} | "
        f"{'new tok':>7} | heard → reply"
    )
    print(
        "   (ms; total: from the true end of speech; eng.: the engine's end_to_end, from the "
        "VAD decision; early: true end of speech → early transcript (the LLM starts then); "
        "new tok: prompt tokens llama.cpp evaluated, per LLM round, r: the model "
        "began a call that was refused)"
    )
    for index, turn in enumerate(turns):
        if index == 1:
            print("   -- warm-up above; measured turns below --")
        print_turn(index, turn)
    measured = turns[1:]
    print("   per stage over the measured turns (ms):")
    for name in STAGES:
        values = [t.stages[name] for t in measured if t.stages.get(name) is not None]
        if values:
            summary = Summary.of([v * 1000 for v in values if v is not None])
            print(f"     {name:<5} {summary.line('ms', 0)}")
    totals = [t.total for t in measured if t.total is not None]
    engine = [t.metrics.end_to_end for t in measured if t.metrics.end_to_end is not None]
    print(f"   true end of speech → first audio sent: {Summary.of(totals).line('s')}")
    print(f"   VAD end of speech → first audio sent:  {Summary.of(engine).line('s')}")
    tool_turns = [t.total for t in measured if t.tools and t.total is not None]
    plain_turns = [t.total for t in measured if not t.tools and t.total is not None]
    if tool_turns:
        print(f"     turns with a tool call:    {Summary.of(tool_turns).line('s')}")
    if plain_turns:
        print(f"     turns without a tool call: {Summary.of(plain_turns).line('s')}")
    print("   baseline, the same parts called directly (no engine, no real-time input):")
    engine_stt = [1000 * v for t in measured if (v := t.stages.get("stt")) is not None]
    engine_tts = [1000 * v for t in measured if (v := t.stages.get("tts")) is not None]
    print(
        f"     Whisper on the question:       p50 {Summary.of(baseline.stt).p50 * 1000:4.0f} ms"
        f"  (engine 'stt' p50 {Summary.of(engine_stt).p50:4.0f} ms)"
    )
    print(
        f"     Piper first audio, 1st piece:  p50 {Summary.of(baseline.tts).p50 * 1000:4.0f} ms"
        f"  (engine 'tts' p50 {Summary.of(engine_tts).p50:4.0f} ms)"
    )
    missing = len(measured) - len(totals)
    if missing:
        print(f"   {missing} measured turn(s) sent no audio")
    if totals:
        bar("p50 true end of speech → first audio sent", Summary.of(totals).p50, BAR_P50, "s")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="4 measured turns instead of 11")
    parser.add_argument("--turns", type=int, default=None, help="measured turns (max 11)")
    parser.add_argument("--min-endpointing", type=float, default=None)
    parser.add_argument("--min-silence", type=float, default=None)
    parser.add_argument("--llm-threads", type=int, default=1)
    parser.add_argument("--llm-batch-threads", type=int, default=2, help="as the demo")
    parser.add_argument("--whisper-threads", type=int, default=2)
    parser.add_argument(
        "--route-tools", choices=["on", "off"], default="on", help="the router (on, as the demo)"
    )
    parser.add_argument(
        "--llm-history", type=int, default=0, help="exchanges sent before the question (-1: all)"
    )
    args = parser.parse_args()
    turns = args.turns if args.turns is not None else (4 if args.quick else len(QUESTIONS) - 1)
    args.turns = max(1, min(turns, len(QUESTIONS) - 1))
    return args


def main() -> None:
    args = parse()
    header("voice to voice, offline stack in-process (InMemoryEdge, real-time input)")
    os.environ["PARLEY_LLM"] = "local"  # this bench measures the offline stack
    turns, baseline = asyncio.run(run(args))
    report(turns, baseline)
    print(f"   after the run: {load_note()}")


if __name__ == "__main__":
    main()
