"""Everything runs with the network cut after install (``unshare -n``: a namespace with no network).

1. `examples/demo.py run` starts, loads every model and prints its URL.
2. One real turn with the demo agent over the in-memory edge: Piper speaks a question, Silero
   and Whisper hear it, SmolLM2 calls the weather tool and answers, Piper speaks the answer,
   Whisper transcribes that audio. This file is also the script that runs the turn
   (``python tests/test_demo_offline.py turn``), so the turn runs inside the namespace.

The tests skip when this system does not let us create a network namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.py"
QUESTION = "What is the weather in London?"
OFFLINE_ENV = {**os.environ, "PARLEY_LLM": "local", "PYTHONUNBUFFERED": "1"}


@cache
def _no_network_prefix() -> tuple[str, ...] | None:
    """``unshare -n`` (as root) or ``unshare -rn`` (a user namespace), whichever works here."""
    for prefix in (("unshare", "-n"), ("unshare", "-rn")):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if probe.returncode == 0:
            return prefix
    return None


def no_network() -> tuple[str, ...]:
    prefix = _no_network_prefix()
    if prefix is None:
        pytest.skip(
            "cannot create a network namespace here (`unshare -n` and `unshare -rn` are "
            "not permitted: needs root, or unprivileged user namespaces enabled)"
        )
    return prefix


def _load_demo() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("parley_demo", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = demo
    spec.loader.exec_module(demo)
    return demo


def test_demo_llm_choice_is_explicit_and_printed() -> None:
    demo = _load_demo()
    choose = demo.choose_llm
    assert choose({}).spec == demo.OFFLINE_LLM == "local?n_threads_batch=2&route_tools=true"
    assert choose({}).offline
    # A key picks the cloud LLM only when its plugin is installed (all are, in this workspace).
    openai = choose({"OPENAI_API_KEY": "sk-test"})
    assert (openai.spec, openai.offline) == ("openai", False)
    assert "OPENAI_API_KEY is set" in openai.describe()
    assert "PARLEY_LLM=local" in openai.describe()  # the way back is on the same line
    assert choose({"GOOGLE_API_KEY": "g"}).spec == "gemini"
    # PARLEY_LLM wins over any key, and "local" keeps the demo offline with a key set.
    assert choose({"OPENAI_API_KEY": "k", "PARLEY_LLM": "local"}).spec == demo.OFFLINE_LLM
    pinned = choose({"OPENAI_API_KEY": "k", "PARLEY_LLM": "anthropic/claude-haiku-4-5"})
    assert pinned.spec == "anthropic/claude-haiku-4-5"
    assert pinned.describe().startswith("LLM: anthropic/claude-haiku-4-5 — a cloud model")
    assert choose({"PARLEY_LLM": "llamacpp?max_tokens=64"}).offline


def test_demo_starts_with_the_network_cut() -> None:
    process = subprocess.Popen(
        [
            *no_network(),
            sys.executable,
            str(DEMO),
            "run",
            "--no-demo",
            "--no-splash",
            "--port",
            "0",
            "--call-id",
            "offline",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=OFFLINE_ENV,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        lines.extend(line.rstrip("\n") for line in process.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 90
        while not any("to talk to the agent" in line for line in lines):
            assert process.poll() is None, "the demo exited:\n" + "\n".join(lines)
            assert time.monotonic() < deadline, "no URL within 90 s:\n" + "\n".join(lines)
            time.sleep(0.1)
        # Ctrl-C, as a person stops it (here `python examples/demo.py run`; through `hatch run
        # demo`, hatch's /bin/sh dies of the same SIGINT (254) unless the script uses `exec`).
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "\n".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=5)
    output = "\n".join(lines)
    assert re.search(r"^LLM: local\S* — offline", output, re.MULTILINE), output
    assert re.search(r"Open http://127\.0\.0\.1:\d+/webrtc/\?call=offline", output), output
    assert "Traceback" not in output, output
    # One URL (the page); the demo stays until Ctrl-C and says so; no request or ICE lines.
    assert len(re.findall(r"http://", output)) == 1, output
    assert "Idle timeout off" in output, output
    assert "aioice" not in output and "uvicorn" not in output, output


def test_one_offline_turn_with_the_network_cut() -> None:
    done = subprocess.run(
        [*no_network(), sys.executable, __file__, "turn"],
        capture_output=True,
        text=True,
        env=OFFLINE_ENV,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{json.dumps(result, indent=2)}")

    # It really ran without a network.
    assert result["interfaces"] == ["lo"], result
    assert result["internet"].startswith("unreachable"), result

    # A real turn: heard the question, used the tool, spoke an answer about it.
    assert "london" in result["user_text"].lower(), result
    assert result["tool_calls"] == [["get_weather", {"location": "London"}]], result
    assert result["reply_seconds"] > 1.0, result
    heard = result["reply_heard"].lower()
    assert "london" in heard, result
    assert any(word in heard for word in ("sunny", "weather", "degrees", "22")), result
    assert result["first_audio_ms"] is not None, result


# --- the turn, run inside the namespace -------------------------------------------------------


def _network_status() -> tuple[list[str], str]:
    interfaces = sorted(name for _, name in socket.if_nameindex())
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError as error:
        return interfaces, f"unreachable ({error})"
    return interfaces, "reachable"


async def _one_turn() -> dict[str, Any]:
    from parley.audio import resample
    from parley.events import ToolCalled, TurnMetricsReady
    from parley.frames import AudioFrame, concat_audio
    from parley.session import AgentSession
    from parley.testing import InMemoryEdge
    from parley_piper.tts import PiperTTS
    from parley_whisper.stt import WhisperSTT

    demo = _load_demo()
    tts = PiperTTS()
    question = resample(concat_audio([f async for f in tts.synthesize(QUESTION)]), 48000)
    await tts.aclose()

    edge = InMemoryEdge(input_sample_rate=48000, output_sample_rate=48000, realtime_playout=False)
    agent = demo.build_agent(edge)
    session = AgentSession(agent)
    tools: list[ToolCalled] = []
    session.events.subscribe(tools.append, ToolCalled)
    completed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_turn(event: TurnMetricsReady) -> None:
        if not completed.done():
            completed.set_result(event.metrics)

    session.events.subscribe(on_turn, TurnMetricsReady)
    call = await agent.create_call("default", "offline-turn")
    connection = await edge.join(call, agent.agent_user)
    await session.start(connection)
    await connection.push_silence(0.3, realtime=True)
    samples = question.to_int16().data[:, 0]
    step = 960  # 20 ms frames, as the WebRTC edge delivers them
    frames = [
        AudioFrame(samples[i : i + step], 48000, i / 48000) for i in range(0, len(samples), step)
    ]
    await connection.push_frames(frames, realtime=True)
    await connection.push_silence(1.5, realtime=True)
    metrics = await asyncio.wait_for(completed, 60)
    await connection.audio_output.wait_for_playout()
    reply = connection.audio_output.audio()
    await session.close()

    whisper = WhisperSTT()
    heard = await whisper.recognize(reply)
    await whisper.aclose()
    interfaces, internet = _network_status()
    return {
        "interfaces": interfaces,
        "internet": internet,
        "llm": type(session.llm).__name__,
        "user_text": metrics.user_text,
        "tool_calls": [[t.name, json.loads(t.arguments)] for t in tools],
        "reply_text": getattr(agent.chat_ctx.last("assistant"), "content", ""),
        "reply_seconds": round(reply.duration, 2),
        "reply_heard": heard,
        "first_audio_ms": metrics.to_dict()["first_audio_sent_ms"],
    }


if __name__ == "__main__" and sys.argv[1:] == ["turn"]:
    print(json.dumps(asyncio.run(_one_turn())), flush=True)
