"""The per-frame path on its own: Twilio's messages in and out, the caller's audio queue,
and the agent's writes taking turns with the event loop."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest
from parley.frames import AudioFrame
from parley_twilio.g711 import FRAME_BYTES, ulaw_decode
from parley_twilio.line import INPUT_QUEUE_FRAMES, PhoneLine
from parley_twilio.output import WRITE_BATCH, PhoneAudioOutput
from parley_twilio.protocol import (
    OutboundMessages,
    StreamStart,
    inbound_audio,
    media_payload,
    parse,
)

AUDIO = bytes(range(96, 256))  # its base64 has "/", which JSON may escape
PAYLOAD = base64.b64encode(AUDIO).decode()


def twilio_media(track: str = "inbound") -> str:
    message = {
        "event": "media",
        "sequenceNumber": "3",
        "media": {"track": track, "chunk": "1", "timestamp": "20", "payload": PAYLOAD},
        "streamSid": "MZ1",
    }
    return json.dumps(message, separators=(",", ":"))  # compact, as Twilio sends it


def test_twilios_media_layout_is_read_without_a_parse() -> None:
    assert inbound_audio(twilio_media()) == AUDIO


@pytest.mark.parametrize(
    "text",
    [
        twilio_media(track="inbound_track"),  # other spellings: the full parse decides
        twilio_media(track="outbound"),
        twilio_media().replace("/", "\\/"),  # JSON may escape a solidus
        json.dumps(json.loads(twilio_media())),  # spaces after separators
        '{"event":"mark","streamSid":"MZ1","mark":{"name":"5"}}',
        '{"event":"media","media":{"track":"inbound","payload":"not base64!"}}',
    ],
)
def test_any_other_message_or_layout_takes_the_full_parse(text: str) -> None:
    assert inbound_audio(text) is None


def test_the_full_parse_reads_what_the_fast_path_leaves() -> None:
    escaped = twilio_media().replace("/", "\\/")
    assert "\\/" in escaped
    assert media_payload(parse(escaped)) == AUDIO


def test_outbound_messages_are_the_json_twilio_expects() -> None:
    messages = OutboundMessages('MZ"odd\\sid')
    assert json.loads(messages.media(AUDIO)) == {
        "event": "media",
        "streamSid": 'MZ"odd\\sid',
        "media": {"payload": PAYLOAD},
    }
    assert json.loads(messages.mark("15")) == {
        "event": "mark",
        "streamSid": 'MZ"odd\\sid',
        "mark": {"name": "15"},
    }
    assert json.loads(messages.clear) == {"event": "clear", "streamSid": 'MZ"odd\\sid'}


class Socket:
    async def send_text(self, data: str) -> None:
        pass

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        pass


async def test_the_callers_audio_arrives_in_order_and_the_newest_is_kept_unread() -> None:
    line = PhoneLine("call-1", StreamStart("MZ1", "CA1"), Socket())
    total = INPUT_QUEUE_FRAMES + 10
    for n in range(total):
        line.audio_received(bytes([n]) * FRAME_BYTES)
    assert line.frames_dropped == 10
    frames = line.frames()
    first = await anext(frames)
    assert first.data[0, 0] == ulaw_decode(bytes([10]))[0]  # the oldest ten were dropped
    assert first.timestamp == pytest.approx(10 * 0.02)

    async def read_rest() -> list[AudioFrame]:
        return [frame async for frame in frames]

    reading = asyncio.ensure_future(read_rest())
    await asyncio.sleep(0)
    line.audio_received(bytes([200]) * FRAME_BYTES)  # wakes the waiting reader
    await asyncio.sleep(0)
    line.end("done")
    rest = await asyncio.wait_for(reading, 1.0)
    assert len(rest) == INPUT_QUEUE_FRAMES  # the 49 queued, then the one that woke it
    assert rest[-1].data[0, 0] == ulaw_decode(bytes([200]))[0]
    await line.close()


async def test_a_long_write_takes_turns_with_the_loop() -> None:
    """A reply's first second is written at once; in batches, other work runs between."""
    output = PhoneAudioOutput("MZ1", max_buffered=1.0)
    order: list[str] = []
    tone = AudioFrame(np.full(160, 1000, np.int16), 8000)

    async def writer() -> None:
        for _ in range(50):
            await output.write(tone)
            order.append("w")

    async def other() -> None:
        while len(order) < 100:
            order.append("o")
            await asyncio.sleep(0)

    await asyncio.wait_for(asyncio.gather(writer(), other()), 1.0)
    runs = "".join(order).split("o")
    assert max(len(run) for run in runs) <= WRITE_BATCH, "".join(order)
    assert order.count("w") == 50
    output.close()


async def test_a_full_buffer_wakes_its_writer_a_batch_at_a_time() -> None:
    output = PhoneAudioOutput("MZ1", max_buffered=0.1, mark_every=1000)
    sent: list[str] = []
    written: list[int] = []  # frames sent when each write returned
    tone = AudioFrame(np.full(160, 1000, np.int16), 8000)

    async def send(text: str) -> None:
        sent.append(text)

    async def writer() -> None:
        for _ in range(30):
            await output.write(tone)
            written.append(output.frames_sent)

    pacing = asyncio.ensure_future(output.run(send))
    await asyncio.wait_for(writer(), 5.0)
    await output.wait_for_playout()
    output.close()
    await pacing
    assert output.frames_sent == 30
    # Once the buffer was full, writes returned in groups of WRITE_BATCH per frame sent.
    blocked = written[6:]
    groups = [blocked.count(n) for n in sorted(set(blocked))]
    assert max(groups) <= WRITE_BATCH + 1 and sum(g > 1 for g in groups) > 0, written
