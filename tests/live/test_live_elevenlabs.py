"""ElevenLabs against the real service; skipped unless ELEVENLABS_API_KEY is set."""

from __future__ import annotations

import os

import pytest
from parley.frames import AudioFrame

pytestmark = pytest.mark.skipif(
    not os.environ.get("ELEVENLABS_API_KEY"),
    reason="set ELEVENLABS_API_KEY to run the live ElevenLabs tests",
)


async def speak(**options: object) -> list[AudioFrame]:
    from parley_elevenlabs.tts import ElevenLabsTTS

    tts = ElevenLabsTTS(**options)  # type: ignore[arg-type]
    frames = [frame async for frame in tts.synthesize("Hello from Parley, on a live test.")]
    assert tts.fallbacks == 0
    await tts.aclose()
    return frames


async def test_websocket_input_streaming() -> None:
    frames = await speak()
    assert {f.sample_rate for f in frames} == {24000}
    assert sum(f.duration for f in frames) > 1.0


async def test_http_streaming() -> None:
    frames = await speak(transport="http", sample_rate=16000)
    assert sum(f.duration for f in frames) > 1.0


async def test_bad_key_is_reported() -> None:
    from parley_elevenlabs import ElevenLabsError

    with pytest.raises(ElevenLabsError):
        await speak(api_key="not-a-real-key")
