"""The Stream edge on Stream's real network; skipped unless STREAM_API_KEY and
STREAM_API_SECRET are set.

It creates a call of type "default", joins it as an agent through the SDK, publishes half a
second of audio, sends a custom event, mints a demo link and leaves. Open the demo link it
logs while it runs to see the agent in the call.
"""

from __future__ import annotations

import logging
import os
import uuid

import pytest
from parley.edge import User
from parley.testing import tone_frames

pytestmark = pytest.mark.skipif(
    not (os.environ.get("STREAM_API_KEY") and os.environ.get("STREAM_API_SECRET")),
    reason="set STREAM_API_KEY and STREAM_API_SECRET to run the live Stream tests",
)

AGENT = User(name="Parley live test", id="parley-live-agent")


async def test_joins_a_real_call_speaks_and_leaves() -> None:
    from parley_getstream import StreamConnection, StreamEdge

    edge = StreamEdge()
    call = await edge.create_call("default", f"parley-live-{uuid.uuid4().hex[:10]}")
    connection = await edge.join(call, AGENT)
    assert isinstance(connection, StreamConnection)
    try:
        assert connection.participants[AGENT.id].is_agent
        link = await edge.demo_link(call)
        assert link.startswith(f"https://getstream.io/video/demos/join/{call.call_id}?")
        logging.getLogger(__name__).warning("demo link: %s", link)
        for frame in tone_frames(0.5, 48000):
            await connection.audio_output.write(frame)
        await connection.audio_output.wait_for_playout()
        assert connection.output.frames_sent == 25
        await connection.send_data(
            {"type": "transcript", "role": "agent", "text": "live test", "final": True}
        )
    finally:
        await connection.leave()
        await edge.aclose()
    assert connection.closed
