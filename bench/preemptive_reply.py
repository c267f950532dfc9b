"""What answering ahead (`TurnOptions(preemptive_reply=True)`) saves with cloud-shaped parts.

Fakes with a cloud stack's delays: a streaming STT whose final comes after 0.2 s of quiet,
the VAD's end of speech after 0.32 s, the default 0.4 s endpointing delay, an LLM whose first
token takes 0.3 s (then 50 tokens/s) and a TTS whose first audio takes 0.15 s. Each turn is a
0.6 s utterance, then silence until the reply has played. Printed: the engine's end of speech
(VAD) → first audio sent, per turn, without the option (the baseline, in the same run) and with
it. The offline demo's figures are in `bench/voice_to_voice.py` (there it gains nothing: see
examples/demo.py).

Run: ``python bench/preemptive_reply.py [--quick]``.
"""

from __future__ import annotations

import asyncio

from _common import Summary, header, parse_args, start_session
from parley.events import TurnMetricsReady
from parley.pipeline import CascadingPipeline
from parley.policy import TurnOptions
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge


async def end_to_end(preemptive: bool, turns: int) -> list[float]:
    """End of speech → first audio sent (ms), per turn."""
    pipeline = CascadingPipeline(
        stt=FakeSTT([f"question number {n}" for n in range(turns)], min_silence=0.2),
        llm=FakeLLM(["An answer. And a little more."] * turns, first_token_delay=0.3),
        tts=FakeTTS(first_audio_delay=0.15),
        vad=FakeVAD(),
        turn=TurnOptions(min_endpointing_delay=0.4, preemptive_reply=preemptive),
    )
    edge = InMemoryEdge(realtime_playout=False)
    session, connection = await start_session(pipeline, edge, f"preempt-{preemptive}")
    figures: list[float] = []

    def record(event: TurnMetricsReady) -> None:
        if event.metrics.end_to_end is not None:
            figures.append(event.metrics.end_to_end * 1000)

    session.events.subscribe(record, TurnMetricsReady)
    try:
        for _ in range(turns):
            await connection.push_speech(0.6, realtime=True)
            await connection.push_silence(2.0, realtime=True)
    finally:
        await session.close()
    return figures


async def main() -> None:
    args = parse_args(__doc__.splitlines()[0], "3 turns each instead of 8")
    turns = 3 if args.quick else 8
    header("preemptive_reply: end of speech → first audio sent, cloud-shaped fake parts")
    results = {}
    for preemptive in (False, True):
        results[preemptive] = Summary.of(await end_to_end(preemptive, turns))
        label = "answering ahead " if preemptive else "at the commit   "
        print(f"   {label} {results[preemptive].line('ms', 0)}")
    saved = results[False].p50 - results[True].p50
    print(f"   saved at p50: {saved:.0f} ms (the endpointing wait overlapped by LLM and TTS)")


if __name__ == "__main__":
    asyncio.run(main())
