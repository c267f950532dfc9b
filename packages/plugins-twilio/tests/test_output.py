"""The paced output on its own: frames leave on their ticks, not when the engine writes."""

from __future__ import annotations

import asyncio

import numpy as np
from parley.frames import AudioFrame
from parley_twilio.output import EARLY_TOLERANCE, PhoneAudioOutput


async def test_writes_during_a_tick_do_not_send_frames_early() -> None:
    output = PhoneAudioOutput("MZ1", mark_every=1000)
    loop = asyncio.get_running_loop()
    sent: list[float] = []

    async def send(text: str) -> None:
        if text.startswith('{"event":"media"'):
            sent.append(loop.time())

    pacing = asyncio.ensure_future(output.run(send))
    tone = AudioFrame(np.full(80, 1000, np.int16), 8000)  # 10 ms: each write wakes the pacer
    for _ in range(20):
        await output.write(tone)
        await asyncio.sleep(0.001)
    await output.wait_for_playout()
    output.close()
    await pacing

    assert len(sent) >= 10
    # Lateness is the machine's; earliness would be ours: no frame leaves before its tick.
    assert output.lateness().min() >= -EARLY_TOLERANCE, output.lateness()
