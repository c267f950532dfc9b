"""The demo page's conversation in headless Chromium, driven by a scripted agent (no models).

The agent's words appear as their audio plays (revealed over ``playout_ms``, not at once), a
reply the user talks over stays above the user's line and is marked interrupted, and another
visitor's speech carries that visitor's name, not "You".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from parley.edge import User
from parley.frames import AudioFrame
from parley.wav import write_wav
from parley_webrtc.edge import WebRTCEdge
from parley_webrtc.rooms import Rooms
from parley_webrtc.routes import create_router
from webrtc_chromium import launch_chromium, require_chromium, serve

WORDS = "one two three four five six seven eight"
ITEMS_JS = """[...document.querySelectorAll('#transcript li:not(.hint)')].map(li => [
  li.className, li.querySelector('.who').textContent,
  (li.querySelector('.text') || {}).textContent || '',
  (li.querySelector('.mark') || {}).textContent || ''])"""


def tone(seconds: float) -> AudioFrame:
    t = np.arange(round(48000 * seconds)) / 48000
    return AudioFrame((0.3 * np.sin(2 * np.pi * 330 * t) * 32767).astype(np.int16), 48000)


async def test_words_follow_playout_and_speakers_keep_their_names(tmp_path: Path) -> None:
    chromium = require_chromium()
    silence = tmp_path / "silence.wav"
    write_wav(silence, AudioFrame(np.zeros(48000 * 5, np.int16), 48000))
    rooms = Rooms()
    edge = WebRTCEdge(rooms=rooms, loopback=True)
    connection = await edge.join(await edge.create_call("default", "demo"), User("Ada", "agent"))
    app = FastAPI()
    app.include_router(create_router(rooms))
    try:
        async with serve(app) as base, launch_chromium(chromium, fake_audio=silence) as browser:
            page = await browser.open(f"{base}/webrtc/?call=demo")
            await page.click("#join")
            await page.wait_for("parley.connection === 'connected'", 30)
            send = connection.send_data

            await send({"type": "state", "state": "thinking"})
            await send({"type": "transcript", "role": "user", "text": "Count", "final": True})
            await send(
                {
                    "type": "transcript",
                    "role": "user",
                    "text": "Me too",
                    "final": True,
                    "participant_id": "someone-else",
                    "name": "Bob",
                }
            )
            # The reply: 1.6 s of audio queued, then its text; the words follow the audio.
            await send({"type": "state", "state": "speaking"})
            for _ in range(8):
                await connection.output.write(tone(0.2))  # waits while over 1 s is queued
                if connection.output.buffered >= 0.9:
                    break
            await send({"type": "transcript", "role": "agent", "text": WORDS, "final": False})
            seen: list[str] = []
            async with asyncio.timeout(20):
                while not seen or seen[-1] != WORDS:
                    text = await page.evaluate(
                        "(document.querySelector('#transcript li.agent:last-child .text')"
                        " || {}).textContent || ''"
                    )
                    if not seen or text != seen[-1]:
                        seen.append(text)
                    await asyncio.sleep(0.02)
            # The user talks over the rest of the reply; the agent stops.
            await connection.output.write(tone(0.6))
            await send({"type": "transcript", "role": "user", "text": "Stop", "final": False})
            assert connection.output.flush() > 0
            await send({"type": "transcript", "role": "agent", "text": "one two", "final": True})
            await send({"type": "state", "state": "listening"})
            items = await page.wait_for(
                f"(() => {{ const items = {ITEMS_JS};"
                " return items.length === 4 && items[2][3] && items; })()",
                10,
            )
            errors = await page.evaluate("parley.errors")
    finally:
        await edge.aclose()

    print(f"\nthe reply's text as the page showed it: {seen}")
    assert errors == []
    # Revealed word by word, not at once: several steps between nothing and everything.
    shown = [s for s in seen if s]
    assert len(shown) >= 4, seen
    assert all(WORDS.startswith(step) for step in shown)
    classes, who, texts, marks = zip(*items, strict=True)
    assert who == ("You", "Bob", "Ada", "You")
    assert "other" in classes[1] and "other" not in classes[0]
    assert texts == ("Count", "Me too", "one two", "Stop")
    assert marks == ("", "", "interrupted", "")
    assert "interrupted" in classes[2] and "partial" in classes[3]
