"""One VAD per frame: a batch STT behind the VAD segmenter (the ``local`` preset's wiring,
Whisper behind Silero) shares the engine's VAD stream instead of running it a second time."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

import pytest
from parley import Agent, AgentSession, CascadingPipeline, TurnOptions
from parley.edge import Call
from parley.events import UserTurnEnded
from parley.frames import AudioFrame
from parley.testing import FakeBatchSTT, FakeLLM, FakeTTS, FakeVAD, InMemoryEdge
from parley.vad import VAD, VADEvent, VADStream

FRAME = 0.02  # the Edge delivers 20 ms frames


class CountingVAD(VAD):
    """Wraps a VAD and counts `push` calls over every stream made from it."""

    def __init__(self, inner: VAD) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.options = inner.options
        self.streams = 0
        self.pushes = 0

    def stream(self) -> VADStream:
        self.streams += 1
        return CountingStream(self, self.inner.stream())

    async def warm_up(self) -> None:
        await self.inner.warm_up()

    async def aclose(self) -> None:
        await self.inner.aclose()


class CountingStream(VADStream):
    def __init__(self, owner: CountingVAD, inner: VADStream) -> None:
        self.owner = owner
        self.inner = inner

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        self.owner.pushes += 1
        return self.inner.push(frame)

    @property
    def speaking(self) -> bool:
        return self.inner.speaking

    @property
    def pausing(self) -> bool:
        return self.inner.pausing

    def reset(self) -> None:
        self.inner.reset()


def local_vad() -> VAD:
    if importlib.util.find_spec("parley_silero") is None:
        pytest.skip("parley-silero is not installed")
    from parley.plugins import resolve

    vad = resolve("vad", "local")
    assert type(vad).__name__ == "SileroVAD"
    return vad  # type: ignore[no-any-return]


async def until(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("make_vad", [FakeVAD, local_vad], ids=["fake", "silero"])
async def test_one_vad_call_per_frame_with_a_batch_stt(make_vad: Callable[[], VAD]) -> None:
    vad = CountingVAD(make_vad())
    agent = Agent("Be brief.")
    pipeline = CascadingPipeline(
        stt=FakeBatchSTT(["hello there"]),
        llm=FakeLLM(["Hi."]),
        tts=FakeTTS(),
        vad=vad,
        turn=TurnOptions(min_endpointing_delay=0.05),
    )
    edge = InMemoryEdge(input_sample_rate=16000, measure_input=True)
    connection = await edge.join(Call("default", "vad-count", edge), agent.agent_user)
    session = AgentSession(agent, pipeline)
    turns: list[UserTurnEnded] = []
    session.events.subscribe(turns.append, UserTurnEnded)
    await session.start(connection)
    try:
        await connection.push_silence(0.2)
        await connection.push_speech(1.0)
        await connection.push_silence(1.0)
        frames = connection.frames_pushed
        assert frames == round(2.2 / FRAME)
        taken = connection.input_lateness
        assert taken is not None
        await until(lambda: len(taken) == frames and vad.pushes >= frames)
        await asyncio.sleep(0.1)  # the last frame's processing ends
        if make_vad is FakeVAD:  # Silero hears no speech in a test tone
            await until(lambda: turns)  # the shared VAD still drives the turn
    finally:
        await session.close()
    assert vad.streams == 1
    assert vad.pushes == frames  # exactly one VAD call per 20 ms frame
    if make_vad is FakeVAD:
        assert [t.text for t in turns] == ["hello there"]
