"""The zero-key demo: talk to a voice agent in the browser, on offline models.

    hatch run demo                       # = python examples/demo.py run; prints the URL to open
    hatch run demo --port 8080 --no-demo # any `run` option; --no-demo: do not open a browser
    hatch run demo --idle-timeout 60     # leave 60 s after the last person (default: stay)
    python examples/demo.py serve        # the HTTP session API instead of one console session

Everything runs on this machine: Silero VAD, Whisper tiny.en, SmolLM2-135M-Instruct on
llama.cpp and Piper, over the local WebRTC edge. No key, no account, no network.

Which LLM (printed at start, so a key in the environment never changes it silently):

- ``PARLEY_LLM=<spec>`` wins, e.g. ``openai/gpt-4o-mini``, ``anthropic``, or ``local``.
- Otherwise a cloud key picks its plugin when that plugin is installed: ``OPENAI_API_KEY``
  (parley-openai), ``ANTHROPIC_API_KEY`` (parley-anthropic), ``GEMINI_API_KEY`` or
  ``GOOGLE_API_KEY`` (parley-gemini), in that order.
- Otherwise the offline ``local`` LLM. ``PARLEY_LLM=local`` keeps it offline with a key set.

STT, TTS and VAD stay offline in every case.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parley import (
    Agent,
    AgentLauncher,
    Runner,
    TurnOptions,
    User,
    function_tool,
)
from parley.edge import Edge
from parley.plugins import list_parts

INSTRUCTIONS = "You are a friendly voice assistant. Answer in one or two short sentences."
GREETING = "Hello! Ask me about the weather anywhere in the world, or for a joke."


# read_only: a lookup that changes nothing, so a reply started before the end of the turn may
# call it then (`parley.preemption`); the answer is ready when the turn is committed.
# result_is_reply: the result is a whole spoken answer, said as it is (no second LLM round).
@function_tool(
    description="Get the current weather for a location", read_only=True, result_is_reply=True
)
async def get_weather(location: str) -> str:
    # A fixed, recognizable phrase: the tests check that the spoken answer comes from here.
    return f"It is sunny and 22 degrees in {location}."


# SmolLM2-135M cannot make up a joke (asked ten ways it answers with a question and stops),
# so the demo hands it a joke book. Any agent can do the same for what its model cannot.
JOKES = (
    "Why did the bicycle fall over? It was two tired.",
    "What do you call a fish with no eyes? A fsh.",
    "Why don't eggs tell jokes? They would crack each other up.",
    "What do you call a bear with no teeth? A gummy bear.",
    "Why did the scarecrow win an award? He was outstanding in his field.",
    "Why can't a nose be twelve inches long? Then it would be a foot.",
)
_next_joke = itertools.cycle(JOKES)


@function_tool(
    description="Tell a joke",
    read_only=True,
    result_is_reply=True,
    examples=[
        ("Tell me a joke.", {}),
        ("Do you know any jokes?", {}),
        ("Make me laugh.", {}),
        ("Say something funny.", {}),
    ],
)
async def tell_joke() -> str:
    return next(_next_joke)


# Turn-taking for this demo (a user-level choice, measured with bench/voice_to_voice.py and
# bench/browser_voice_to_voice.py). Whisper starts transcribing as soon as the user's audio
# goes quiet (`VADOptions.pause_below_peak_db`), while the VAD waits out its 0.32 s of silence,
# and the reply starts on that transcript (`preemptive_reply`): the LLM answers, a read-only
# tool runs and Piper renders the first words during the wait, and all of it is played once
# the VAD confirms the end of the turn (dropped, unheard, if the user goes on). So no extra
# endpointing wait: the user has then been quiet for ~0.45 s.
TURN_OPTIONS = TurnOptions(min_endpointing_delay=0.0, preemptive_reply=True)
# SmolLM2 writes its whole first sentence before Piper can start; speaking the first three
# words as their own piece starts the answer sooner (browser p50 0.84 -> 0.79 s), at the cost
# of a phrase break after them.
FIRST_PIECE_WORDS = 3

# Cloud LLMs chosen automatically when their key is set and their plugin is installed.
CLOUD_LLMS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("OPENAI_API_KEY",), "openai", "parley-openai"),
    (("ANTHROPIC_API_KEY",), "anthropic", "parley-anthropic"),
    (("GEMINI_API_KEY", "GOOGLE_API_KEY"), "gemini", "parley-gemini"),
)


@dataclass(frozen=True, slots=True)
class LLMChoice:
    spec: str  # a spec string for resolve("llm", ...)
    reason: str  # why, for the line printed at start

    @property
    def offline(self) -> bool:
        return self.spec.split("?")[0].split("/")[0] in ("local", "llamacpp")

    def describe(self) -> str:
        if self.offline:
            what = "offline (llama.cpp, SmolLM2-135M-Instruct unless a GGUF is given)"
        else:
            what = "a cloud model: your words are sent to its provider"
        return f"LLM: {self.spec} — {what}; {self.reason}"


def _llm_installed(name: str) -> bool:
    return any(part.name == name and part.deps_ok for part in list_parts("llm"))


# The offline LLM, tuned for this demo. Two threads for reading the prompt (short bursts while
# nothing else runs), one for generation, which overlaps speech synthesis (see the llamacpp
# README). The router picks the tool by its example questions: SmolLM2's own first token
# misses the weather in "Do I need an umbrella?" and, given the joke tool, tells jokes to
# plain questions.
OFFLINE_LLM = "local?n_threads_batch=2&route_tools=true"


def choose_llm(environ: Mapping[str, str] = os.environ) -> LLMChoice:
    """The LLM spec the demo uses; see the module docstring for the rules."""
    explicit = environ.get("PARLEY_LLM", "").strip()
    if explicit == "local":  # the demo's own offline settings
        return LLMChoice(OFFLINE_LLM, "set by PARLEY_LLM")
    if explicit:
        return LLMChoice(explicit, "set by PARLEY_LLM")
    for variables, name, distribution in CLOUD_LLMS:
        key = next((v for v in variables if environ.get(v)), None)
        if key is not None and _llm_installed(name):
            return LLMChoice(
                name, f"{key} is set and {distribution} is installed (PARLEY_LLM=local: offline)"
            )
    return LLMChoice(OFFLINE_LLM, "no cloud key set (or PARLEY_LLM=<spec> for another model)")


def build_agent(
    edge: Edge | str = "webrtc",
    *,
    llm: Any = None,
    turn_options: TurnOptions = TURN_OPTIONS,
    first_piece_words: int | None = FIRST_PIECE_WORDS,
    **parts: Any,
) -> Agent:
    """The demo agent: the offline parts, the weather and joke tools, and the turn settings.

    ``llm`` defaults to `choose_llm`'s pick; ``parts`` overrides stt/tts/vad (bench, tests).
    """
    return Agent.local(
        INSTRUCTIONS,
        edge=edge,
        llm=llm if llm is not None else choose_llm().spec,
        tools=[get_weather, tell_joke],
        agent_user=User(name="Assistant", id="agent"),
        pipeline_options={"turn": turn_options, "first_piece_words": first_piece_words},
        **parts,
    )


async def create_agent(**kwargs: Any) -> Agent:
    return build_agent()


async def join_call(agent: Agent, call_type: str, call_id: str, **kwargs: Any) -> None:
    call = await agent.create_call(call_type, call_id)
    async with agent.join(call) as session:
        # Spoken but kept out of the history: a 135M model answers the first question better
        # when its prompt is just the few-shot block and the question (and the prompt prefix
        # cached at session start is then all it needs).
        await session.say(GREETING, add_to_history=False)
        await agent.finish()


# A demo stays up until Ctrl-C (coming back to the page finds the agent still there); the
# launcher's default (leave 60 s after the last person) suits a server. `--idle-timeout` or
# PARLEY_IDLE_TIMEOUT sets it.
IDLE_TIMEOUT = 0


def main() -> None:
    print(choose_llm().describe(), flush=True)
    launcher = AgentLauncher(
        create_agent=create_agent, join_call=join_call, agent_idle_timeout=IDLE_TIMEOUT
    )
    Runner(launcher).cli()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # Ctrl-C while the demo is still loading (before the server handles signals).
        raise SystemExit(130) from None
