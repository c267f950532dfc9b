"""Preemptive replies: start answering before the turn is over, play only once it is.

With `TurnOptions(preemptive_reply=True)`, a transcript that arrives while the engine still
waits for the end of the turn (the VAD's silence wait, the endpointing delay, a turn detector)
starts the reply at once: the LLM streams and the TTS synthesizes the first sentence, but
nothing is played, no event is emitted and the history is untouched. When the turn is
committed with the same words, the reply is released and plays as soon as its first audio
exists: the models' time overlaps the wait for the end of the turn. When the user speaks
again, or the committed words differ, it is dropped (its streams cancelled) and leaves no
trace.

A held reply runs only read-only tools (`function_tool(read_only=True)`, MCP's
``readOnlyHint``): their calls and results enter the history, and their events and error
reports go out, when it is released (never, if it is dropped); a call to any other tool waits
for the release (tools act on the world). It runs no `on_turn_start` (a flow that overrides
that hook is never answered ahead: the hook is promised a finished turn). Nothing is preempted
while the agent speaks or has speech queued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from parley.flow import ConversationFlow
from parley.host import RunnerHost
from parley.metrics import TurnMetrics
from parley.speaking import Speaker, Utterance
from parley.speech import SpeechHandle
from parley.tracing import TurnTrace


class PreemptiveReply:
    """At most one held reply, and the words it answers."""

    def __init__(
        self,
        host: RunnerHost,
        speaker: Speaker,
        next_turn: Callable[[], int],
        unused_turn: Callable[[int], None],
    ) -> None:
        self.host = host
        self.speaker = speaker
        self._next_turn = next_turn
        self._unused_turn = unused_turn
        self._held: tuple[str, Utterance] | None = None
        self.started = 0  # replies started ahead of a commit
        self.used = 0  # of which released

    @property
    def holding(self) -> bool:
        return self._held is not None

    def start(self, text: str, began: float | None) -> bool:
        """Answer ``text`` now, held; a reply held for other words is dropped first. Returns
        whether a reply to ``text`` is held (the engine then need not prime the LLM with it).
        ``began``: the turn's first speech (``perf_counter``), for its trace."""
        text = text.strip()
        if not text or (self._held is not None and self._held[0] == text):
            return bool(text)
        self.drop()
        flow = type(self.host.flow)
        if self.speaker.busy or flow.on_turn_start is not ConversationFlow.on_turn_start:
            return False
        turn = TurnMetrics(turn=self._next_turn(), user_text=text)
        trace = TurnTrace.start(self.host, turn, began)
        speaker = self.speaker
        speech = Utterance(
            SpeechHandle(),
            lambda queue: speaker.llm_reply(speech, queue, text),
            turn,
            trace=trace,
            released=asyncio.Event(),
        )
        self._held = (text, speech)
        self.started += 1
        speaker.schedule(speech)
        return True

    def take(self, text: str) -> Utterance | None:
        """The held reply if it answers ``text`` (the committed turn's words; the caller
        releases it); any other held reply is dropped."""
        held, self._held = self._held, None
        if held is None:
            return None
        words, speech = held
        if words == text.strip() and not speech.handle.done:
            self.used += 1
            return speech
        self._discard(speech)
        return None

    def drop(self) -> None:
        """The user went on speaking (or gave the turn up): the held reply goes."""
        held, self._held = self._held, None
        if held is not None:
            self._discard(held[1])

    def _discard(self, speech: Utterance) -> None:
        self.speaker.discard(speech)
        if speech.turn is not None:
            self._unused_turn(speech.turn.turn)
