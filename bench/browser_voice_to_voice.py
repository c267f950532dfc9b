"""Voice to voice as a person hears it: the demo in headless Chromium, timed by the page.

Starts the zero-key demo as a user does (``examples/demo.py run --no-demo --port 0``: Silero,
Whisper tiny.en, SmolLM2-135M on llama.cpp, Piper, the WebRTC edge), opens its page in
headless Chromium and joins. The microphone is a WebAudio track that plays questions spoken by
Piper, one at a time, each after the previous answer has been played to its end.

Every figure is the page's own (``window.parleyTurns``, ``window.parleyBargeIns``), measured on
its audio clock: from the end of the question in the microphone track the page sends to the
first sound of the reply it plays — the VAD's silence wait, the network and the jitter buffer
included, which the agent's own figures leave out. tests/test_page_latency.py checks that this
agrees with an independent recording within 100 ms.

Prints per turn: the latency as heard, the agent's stages (STT, end of turn, LLM first token,
TTS first audio, sent) and the rest (VAD wait + network + jitter buffer), and the transcript
pair; p50/p95/max per pass and over all; then one barge-in per pass: a question with a long
answer, the user talking over it, and the time from the user's first sound to the agent's
silence, as heard. The issue's bars are printed beside the figures; this script never fails
on them (it is not a test) and does not tune anything.

Run: ``python bench/browser_voice_to_voice.py [--passes 2] [--questions 10] [--load]
[--screenshots docs/img]``. ``--load`` runs two busy CPU loops beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for helpers in (ROOT / "tests", ROOT / "packages" / "plugins-webrtc" / "tests"):
    sys.path.insert(0, str(helpers))

from _common import Summary, header, load_note  # noqa: E402

# The browser-test helpers live in tests/ folders, which mypy does not check (not on its path).
from demo_process import DemoProcess  # type: ignore[import-not-found]  # noqa: E402
from page_audio import FAKE_MIC_JS, pcm_base64  # type: ignore[import-not-found]  # noqa: E402
from spoken_audio import spoken_question  # type: ignore[import-not-found]  # noqa: E402
from webrtc_chromium import (  # type: ignore[import-not-found]  # noqa: E402
    Page,
    PageError,
    find_chromium,
    launch_chromium,
)

QUESTIONS = (
    "What is the weather in London?",
    "Tell me a short joke.",
    "What is the capital of Italy?",
    "How warm is it in Tokyo today?",
    "Who wrote Romeo and Juliet?",
    "What is the weather like in Madrid?",
    "How many legs does a spider have?",
    "Do I need an umbrella in Dublin?",
    "What should I cook for dinner tonight?",
    "What is the weather in Berlin?",
)
# The weather tool's phrase (examples/demo.py): a weather answer that lacks it was made up.
TOOL_PHRASE = "sunny and 22 degrees"
WEATHER_WORDS = ("weather", "warm", "umbrella")
LONG_QUESTION = "Tell me a long story about a brave knight and a dragon."
INTERRUPTION = "Wait, what is the weather in Rome?"
BARGE_AFTER = 1.0  # seconds of the long answer heard before the user talks over it
LONG_ANSWER_TIMEOUT = 180.0  # a story nobody cut off may go on for minutes

BAR_P50 = 0.9  # seconds, as heard
BAR_MAX = 1.5
BAR_BARGE_IN = 0.3
TURN_TIMEOUT = 30.0
AFTER_REPLY = 0.8  # quiet after an answer before the next question
STAGES = (  # (label, offset from the agent's end of speech, in turn_metrics)
    ("stt", "transcript_ms"),
    ("endp", None),  # first_token_ms - llm_ttft_ms
    ("llm", "first_token_ms"),
    ("tts", "first_audio_ms"),
    ("sent", "first_audio_sent_ms"),
)


@dataclass(slots=True)
class Turn:
    question: str
    heard_ms: float | None = None
    server: dict[str, Any] = field(default_factory=dict)
    user_text: str = ""
    agent_text: str = ""

    @property
    def sent_ms(self) -> float | None:
        value = self.server.get("first_audio_sent_ms")
        return float(value) if value is not None else None


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def is_weather(question: str) -> bool:
    return any(word in question.lower() for word in WEATHER_WORDS)


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes spinning on a core each, as other work on the machine would."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for process in loops:
            process.kill()
            process.wait()


async def final_texts(page: Page, since: int) -> tuple[str, str]:
    """The last final user and agent transcripts among the messages from ``since`` on."""
    texts: dict[str, str] = await page.evaluate(
        f"""(() => {{
          const out = {{user: "", agent: ""}};
          for (const m of parley.messages.slice({since})) {{
            if (m.type === "transcript" && m.final !== false) {{
              out[m.role === "agent" ? "agent" : "user"] = m.text;
            }}
          }}
          return out;
        }})()"""
    )
    return texts["user"], texts["agent"]


async def wait_quiet(
    page: Page, since: int, timeout: float = TURN_TIMEOUT * 2, replies: int = 1
) -> None:
    """Until the ``replies`` replies to what was said from message ``since`` on are over:
    their turn_metrics came and the agent is listening again."""
    await page.wait_for(
        f"parley.messages.slice({since}).filter(m => m.type === 'turn_metrics').length"
        f" >= {replies}",
        timeout,
    )
    await page.wait_for("parley.agentState === 'listening'", TURN_TIMEOUT)
    await asyncio.sleep(AFTER_REPLY)


async def ask(page: Page, name: str, question: str) -> Turn:
    turns, messages = await page.evaluate("[parleyTurns.length, parley.messages.length]")
    await page.evaluate(f"fakeMic.play({json.dumps(name)})")
    turn = Turn(question)
    try:
        await page.wait_for(f"parleyTurns.length > {turns}", TURN_TIMEOUT)
        await wait_quiet(page, messages)
    except PageError as exc:
        print(f"   !! no answer heard to {question!r}: {str(exc).splitlines()[0]}")
        await asyncio.sleep(2)
    heard = await page.evaluate(f"parleyTurns[{turns}] || null")
    if heard is not None:
        turn.heard_ms = float(heard["heardMs"])
        turn.server = heard.get("server") or {}
    turn.user_text, turn.agent_text = await final_texts(page, messages)
    return turn


async def barge_in(page: Page) -> float | None:
    """The long question, then the interruption over its answer; seconds as heard, or None."""
    turns, messages = await page.evaluate("[parleyTurns.length, parley.messages.length]")
    barges = await page.evaluate("parleyBargeIns.length")
    await page.evaluate("fakeMic.play('long')")
    try:
        await page.wait_for(f"parleyTurns.length > {turns}", TURN_TIMEOUT)
    except PageError:
        print("   !! the long question got no answer")
        return None
    await asyncio.sleep(BARGE_AFTER)
    if not await page.evaluate("parley.heard.agent.sounding"):
        print("   !! the answer was over before the user could talk over it")
        with contextlib.suppress(PageError):
            await wait_quiet(page, messages, LONG_ANSWER_TIMEOUT)
        return None
    await page.evaluate("fakeMic.play('interrupt')")
    try:
        found = await page.wait_for(f"parleyBargeIns[{barges}]", 15)
    except PageError:
        print("   !! no barge-in heard: the agent did not stop")
        found = None
    with contextlib.suppress(PageError):  # the cut answer, then the answer to the interruption
        await wait_quiet(page, messages, LONG_ANSWER_TIMEOUT, replies=2)
    said = await page.evaluate(
        f"parley.messages.slice({messages}).filter(m => m.type === 'transcript'"
        " && m.final !== false).map(m => [m.role, m.text, !!m.interrupted])"
    )
    for role, text, cut in said:
        print(f"   {role:5s} {text!r}{'  (interrupted)' if cut else ''}")
    if found is None or found["ms"] is None:
        return None
    return float(found["ms"]) / 1000


def print_turn(index: int, turn: Turn) -> None:
    heard = f"{turn.heard_ms:6.0f}" if turn.heard_ms is not None else "   n/a"
    stages = []
    m = turn.server
    previous = 0.0
    for label, key in STAGES:
        if key is None:
            first, ttft = m.get("first_token_ms"), m.get("llm_ttft_ms")
            at = first - ttft if first is not None and ttft is not None else None
        else:
            at = m.get(key)
        if at is None:
            stages.append(f"{label} -")
            continue
        stages.append(f"{label} {max(0.0, at - previous):.0f}")
        previous = max(previous, at)
    rest = (
        f"rest {turn.heard_ms - turn.sent_ms:.0f}"
        if turn.heard_ms is not None and turn.sent_ms is not None
        else "rest -"
    )
    print(f"   {index:2d} heard {heard} ms  [{' '.join(stages)} {rest}]")
    print(f"      Q {turn.question!r} → heard as {turn.user_text!r}")
    print(f"      A {turn.agent_text!r}")


def summarize(label: str, turns: list[Turn]) -> Summary:
    values = [t.heard_ms / 1000 for t in turns if t.heard_ms is not None]
    summary = Summary.of(values)
    print(f"   {label}: {summary.line('s')}")
    return summary


def bar(label: str, value: float | None, limit: float) -> None:
    if value is None:
        print(f"   BAR {label} ≤ {limit:g} s: no figure -> MISSED")
        return
    met = value <= limit
    print(f"   BAR {label} ≤ {limit:g} s: {value:.3f} s -> {'MET' if met else 'MISSED'}")


async def screenshots(page: Page, folder: Path) -> None:
    """The page at 1280×800 and at phone width (375×812), mid-conversation."""
    for name, width, height, mobile in (
        ("demo-desktop.png", 1280, 800, False),
        ("demo-phone.png", 375, 812, True),
    ):
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        await asyncio.sleep(0.5)
        await page.evaluate("window.dispatchEvent(new Event('resize'))")  # latest words in view
        await asyncio.sleep(0.2)
        await page.screenshot(folder / name)
        print(f"   screenshot {folder / name}")
    await page.send("Emulation.clearDeviceMetricsOverride")


async def run(args: argparse.Namespace) -> None:
    chromium = find_chromium()
    if chromium is None:
        print("headless Chromium is not installed (apt-get install -y chromium)")
        return
    questions = QUESTIONS[: args.questions]
    header(f"browser voice to voice: {len(questions)} questions × {args.passes} passes")
    from parley_piper.tts import PiperTTS

    tts = PiperTTS()
    clips = {f"q{i}": await spoken_question(text, tts) for i, text in enumerate(questions)}
    clips["long"] = await spoken_question(LONG_QUESTION, tts)
    clips["interrupt"] = await spoken_question(INTERRUPTION, tts)
    await tts.aclose()

    demo = DemoProcess("browser-bench")
    try:
        url = await asyncio.to_thread(demo.wait_for_url, 120.0)
        print(f"   demo at {url}")
        async with launch_chromium(chromium) as browser:
            page = await browser.open("about:blank")
            await page.send("Page.addScriptToEvaluateOnNewDocument", {"source": FAKE_MIC_JS})
            await page.navigate(url)
            await page.evaluate("document.getElementById('name').value = 'Bench'")
            for name, clip in clips.items():
                await page.evaluate(
                    f"fakeMic.load({json.dumps(name)}, {json.dumps(pcm_base64(clip))})"
                )
            await page.click("#join")
            await page.wait_for("parley.connection === 'connected'", 30)
            # The greeting first, played to its end.
            await page.wait_for(
                "parley.messages.some(m => m.type === 'transcript' && m.role === 'agent'"
                " && m.final !== false)",
                TURN_TIMEOUT,
            )
            await page.wait_for("parley.agentState === 'listening'", TURN_TIMEOUT)
            await asyncio.sleep(AFTER_REPLY)

            passes: list[list[Turn]] = []
            barges: list[float | None] = []
            for number in range(1, args.passes + 1):
                print(f"-- pass {number}  ({load_note()})")
                turns = []
                for index, question in enumerate(questions):
                    turn = await ask(page, f"q{index}", question)
                    print_turn(index + 1, turn)
                    turns.append(turn)
                passes.append(turns)
                if args.screenshots is not None and number == 1:
                    await screenshots(page, args.screenshots)
                print(f"-- barge-in, pass {number}")
                barges.append(await barge_in(page))
                figure = barges[-1]
                print(
                    f"   user's first sound → agent silent, as heard: "
                    f"{'n/a' if figure is None else f'{figure * 1000:.0f} ms'}"
                )
    finally:
        demo.stop()

    print("-- summary: end of the question → first reply sound, as heard in the page")
    for number, turns in enumerate(passes, 1):
        summarize(f"pass {number}", turns)
    everything = [t for turns in passes for t in turns]
    total = summarize("all   ", everything)
    rests = [t.heard_ms - t.sent_ms for t in everything if t.heard_ms and t.sent_ms]
    sent = [t.sent_ms for t in everything if t.sent_ms]
    if rests and sent:
        print(
            f"   of which the agent's end of speech → first audio sent: "
            f"{Summary.of([s / 1000 for s in sent]).line('s')}\n"
            f"   and the rest (VAD wait, network, jitter buffer): "
            f"{Summary.of([r / 1000 for r in rests]).line('s')}"
        )
    weather = [t for t in everything if is_weather(t.question)]
    with_tool = [t for t in weather if TOOL_PHRASE in normalize(t.agent_text)]
    print(f"   weather answers with the tool's phrase: {len(with_tool)}/{len(weather)}")
    for turn in everything:
        if "joke" in turn.question.lower():
            print(f"   joke request answered (judge by reading): {turn.agent_text!r}")
    heard_barges = [b for b in barges if b is not None]
    print(
        f"   barge-in, as heard: {[f'{b * 1000:.0f} ms' for b in heard_barges]}"
        f" of {len(barges)} tries"
    )
    print(f"   {load_note()}{'; with two busy CPU loops beside it' if args.load else ''}")
    bar("p50 as heard", total.p50 if total.count else None, BAR_P50)
    bar("max as heard", total.max if total.count else None, BAR_MAX)
    bar("barge-in as heard (worst)", max(heard_barges) if heard_barges else None, BAR_BARGE_IN)
    met = "MET" if len(with_tool) == len(weather) else "MISSED"
    print(
        f"   BAR every weather answer has the tool's phrase: {len(with_tool)}/{len(weather)}"
        f" -> {met}"
    )
    print("   BAR a joke request gets a joke: judge the answer above by reading")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--load", action="store_true", help="two busy CPU loops beside it")
    parser.add_argument(
        "--screenshots", type=Path, default=None, help="save the page at two widths here"
    )
    args = parser.parse_args()
    with busy_loops(2 if args.load else 0):
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
