"""One server node for the multi-node WebRTC tests: a Runner whose registry lives in Redis.

    python webrtc_node.py REDIS_URL KEY_PREFIX NODE_ID PORT

The agent is style A on the ``webrtc`` edge with testing-kit parts: whatever the user says,
the scripted STT hears "hello from the browser" and the agent answers with a FakeTTS tone.
Every node started with the same Redis URL and prefix shares one session registry; each
registers its own address, ``http://127.0.0.1:PORT``, which the signaling routes redirect to.
"""

from __future__ import annotations

import sys
from typing import Any

from parley import Agent, AgentLauncher, User
from parley.registry import SessionRegistry
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from parley_redis.store import RedisStore
from parley_server import Runner
from parley_webrtc.edge import WebRTCEdge


def build(redis_url: str, prefix: str, node_id: str, port: int) -> Runner:
    async def create_agent(**params: Any) -> Agent:
        return Agent(
            "You are a test agent.",
            edge=WebRTCEdge(loopback=True),
            agent_user=User(f"Agent on {node_id}", "agent"),
            stt=FakeSTT(["hello from the browser"] * 20),
            llm=FakeLLM([f"Hi, this is {node_id} speaking."] * 20),
            tts=FakeTTS(),
            vad=FakeVAD(),
        )

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            await agent.finish()

    registry = SessionRegistry(
        RedisStore(redis_url, prefix=prefix),
        node_id=node_id,
        ttl=6.0,
        address=f"http://127.0.0.1:{port}",
    )
    launcher = AgentLauncher(
        create_agent,
        join_call,
        registry=registry,
        agent_idle_timeout=30.0,
        maintenance_interval=0.3,
        drain_timeout=0.5,
        warm_up=False,
    )
    return Runner(launcher)


if __name__ == "__main__":
    url, key_prefix, node, port_text = sys.argv[1:5]
    port = int(port_text)
    build(url, key_prefix, node, port).serve(
        host="127.0.0.1", port=port, http_log_level="WARNING", no_splash=True
    )
