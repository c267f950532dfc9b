"""The three VideoSDK-style programs (`examples/videosdk_style/`) run as their documentation
writes them: started as a user starts them, they print a URL; headless Chromium opens it, its
fake microphone asks a question (Piper's voice), and the page hears the greeting and then an
answer. SIGINT then stops the program: ``on_exit`` runs and it exits with status 0.

The real-time example runs on the testing kit's `FakeRealtime` (no offline speech-to-speech
model exists): its "answer" is a tone, after it heard the question by loudness.
Chromium is Debian's ``chromium``; the test skips without it and fails when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from demo_process import ScriptProcess
from spoken_audio import spoken_question_wav
from webrtc_chromium import launch_chromium, require_chromium

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "videosdk_style"
QUESTION = "What is the weather in London?"
LEAD_IN = 15.0  # the page joins, the parts load and the greeting plays before the question
TRAILING = 60.0  # Chromium loops the file: keep the question from coming back
LOUD = 0.02  # the page's RMS meter for "audio is playing"

# Per meter tick, the loudest agent audio before the user's question was heard (the greeting)
# and after it (the answer).
LISTENER_JS = """
(() => {
  // Not "heard": the page's own script has a global of that name.
  window.exampleHeard = { greeting: 0, answer: 0 };
  setInterval(() => {
    const asked = parley.messages.some(
      (m) => m.type === "transcript" && m.role === "user" && m.final !== false);
    const key = asked ? "answer" : "greeting";
    exampleHeard[key] = Math.max(exampleHeard[key], parley.remoteRms);
  }, 50);
})();
"""


URL_LINE = re.compile(r"^Talk to the agent: (http://127\.0\.0\.1:\d+/\S+)$")


class ExampleProcess(ScriptProcess):
    """``python examples/videosdk_style/NAME.py`` on a free port."""

    def __init__(self, name: str) -> None:
        env = {**os.environ, "PARLEY_PORT": "0", "PARLEY_NO_BROWSER": "1"}
        env.pop("OPENAI_API_KEY", None)  # the offline stand-in, never a cloud model
        super().__init__([str(EXAMPLES / f"{name}.py")], env, URL_LINE, "the example")


@pytest.fixture
def chromium() -> str:
    return require_chromium()


@pytest.fixture
async def question(tmp_path: Path) -> Path:
    wav = tmp_path / "question.wav"
    await spoken_question_wav(wav, QUESTION, lead_in=LEAD_IN, trailing=TRAILING)
    return wav


@pytest.fixture
def start_example(chromium: str) -> Iterator[Any]:
    started: list[ExampleProcess] = []

    def start(name: str) -> ExampleProcess:
        process = ExampleProcess(name)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.mark.parametrize("name", ["realtime_pipeline", "cascading_pipeline", "lifecycle"])
async def test_the_example_greets_answers_and_stops_on_sigint(
    name: str, chromium: str, question: Path, start_example: Any
) -> None:
    example: ExampleProcess = start_example(name)
    url = example.wait_for_url(timeout=120.0)
    if name != "lifecycle":
        assert "token=your-auth-token" in url  # RoomOptions(auth_token=...) of the program

    async with launch_chromium(chromium, fake_audio=question) as browser:
        page = await browser.open(url)
        await page.evaluate(LISTENER_JS)
        # A file as the microphone: no echo cancellation or noise suppression (headphones).
        await page.evaluate(
            "parley.micConstraints = {echoCancellation: false, noiseSuppression: false,"
            " autoGainControl: false}"
        )
        await page.click("#join")  # the fake microphone starts the WAV now
        await page.wait_for("parley.connection === 'connected'", 30)
        await page.wait_for(f"exampleHeard.greeting > {LOUD}", LEAD_IN + 30)  # before the question
        user_final = (
            "parley.messages.find(m => m.type === 'transcript' && m.role === 'user'"
            " && m.final !== false)"
        )
        await page.wait_for(user_final, LEAD_IN + 60)
        await page.wait_for(f"exampleHeard.answer > {LOUD}", 90)
        errors = await page.evaluate("parley.errors")

        example.process.send_signal(signal.SIGINT)
        code = example.process.wait(timeout=60)
    await asyncio.sleep(0.2)  # the reader thread takes the last lines
    output = example.output()
    assert errors == [], errors
    assert code == 0, output
    assert "on_exit: goodbye" in output, output
    if name == "lifecycle":
        assert output.index("finally: closing the session") < output.index("on_exit: goodbye")
