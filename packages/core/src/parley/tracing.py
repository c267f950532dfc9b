"""OpenTelemetry spans for sessions and turns, through ``opentelemetry-api`` alone.

Core depends on the API, never on the SDK: until an application installs a tracer provider
(``opentelemetry-sdk`` and an exporter, see docs/tracing.md) every span here is the API's
non-recording span. Everything below a session is skipped when the session's span does not
record, so an untraced turn costs a few attribute reads, and no hook runs per audio frame.

The tree of one session::

    parley.session                  session id, call id, agent name
      parley.turn                   turn number, user text length; ends when the reply ends
        parley.stt                  the user's speech → the final transcript
        parley.endpointing          quiet (or final transcript) → the turn is committed
        parley.llm                  one per LLM round; event ``first_token``
        parley.tool                 one per tool call; name, error
        parley.tts                  first sentence in → last sentence synthesized; ``first_audio``
        parley.playout              first frame handed to the Edge → played (or interrupted)

A turn's spans start and end in different callbacks and tasks, so they are kept on the turn's
`Utterance` (`TurnTrace`), never in a ``with`` block held across awaits. The STT and
endpointing spans are written when the turn is committed, from the turn's
``time.perf_counter`` stamps (the same ones `TurnMetrics` reports).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link, Span, Status, StatusCode
from opentelemetry.util.types import Attributes

if TYPE_CHECKING:
    from parley.metrics import TurnMetrics

# A proxy: it starts recording once the application sets a tracer provider, even later.
tracer = trace.get_tracer("parley")


def epoch_ns(stamp: float) -> int:
    """A ``time.perf_counter()`` reading as OpenTelemetry's wall-clock nanoseconds."""
    return time.time_ns() - int((time.perf_counter() - stamp) * 1e9)


def start_session(session_id: str, call_id: str, agent_name: str) -> Span:
    """The span of one session: the root of its own trace (a session outlives the request
    that started it), linked to that request's span when there is one."""
    current = trace.get_current_span().get_span_context()
    return tracer.start_span(
        "parley.session",
        context=Context(),
        attributes={
            "parley.session.id": session_id,
            "parley.call.id": call_id,
            "parley.agent.name": agent_name,
        },
        links=[Link(current)] if current.is_valid else None,
    )


def end(span: Span, error: BaseException | None = None, at: float | None = None) -> None:
    """End ``span`` (at the ``perf_counter`` stamp ``at``, default now), failed if ``error``."""
    if error is not None and span.is_recording():
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end(None if at is None else epoch_ns(at))


def session_span(host: object) -> Span:
    """The session span of a runner's host (`AgentSession.span`); a host without one, such as
    a test's fake, traces nothing."""
    span = getattr(host, "span", None)
    return span if isinstance(span, Span) else INVALID_SPAN


def child(
    parent: Span, name: str, attributes: Attributes = None, start: float | None = None
) -> Span:
    """A span under ``parent`` (starting at the ``perf_counter`` stamp ``start``, default now);
    the no-op span, without building a context, when ``parent`` does not record."""
    if not parent.is_recording():
        return INVALID_SPAN
    return tracer.start_span(
        name,
        context=trace.set_span_in_context(parent),
        attributes=attributes,
        start_time=None if start is None else epoch_ns(start),
    )


_UNTRACED = nullcontext()


def active(span: Span) -> AbstractContextManager[object]:
    """Make ``span`` the current span, so that what a provider or a tool does (an instrumented
    HTTP request) nests under it. Hold it only around an ``await`` in one task. A span that
    does not record gets a shared do-nothing context: no context object is built."""
    if not span.is_recording():
        return _UNTRACED
    return trace.use_span(span, record_exception=False, set_status_on_exception=False)


class TurnTrace:
    """The spans of one turn, from commit to the end of its reply (see the module docstring)."""

    __slots__ = ("_ended", "_llm_rounds", "playout", "span", "tts")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.tts: Span | None = None
        self.playout: Span | None = None
        self._llm_rounds = 0
        self._ended = False

    @classmethod
    def start(cls, host: object, turn: TurnMetrics, began: float | None) -> TurnTrace | None:
        """The trace of ``turn``, which began at the ``perf_counter`` stamp ``began`` (the
        user's first speech; None: at commit); None when the session is not traced."""
        session = session_span(host)
        if not session.is_recording():
            return None
        committed = turn.turn_committed if turn.turn_committed is not None else time.perf_counter()
        began = began if began is not None and began <= committed else committed
        span = child(
            session,
            "parley.turn",
            {"parley.turn.number": turn.turn, "parley.turn.user_text_length": len(turn.user_text)},
            start=began,
        )
        if turn.final_transcript is not None:
            stt = child(
                span,
                "parley.stt",
                {"parley.stt.text_length": len(turn.user_text)},
                start=min(began, turn.final_transcript),
            )
            end(stt, at=turn.final_transcript)
        quiet = turn.final_transcript or turn.end_of_speech
        if quiet is not None:
            end(child(span, "parley.endpointing", start=quiet), at=committed)
        return cls(span)

    def llm(self, provider: str) -> Span:
        """The span of the reply's next LLM round (end it with `end`)."""
        self._llm_rounds += 1
        return child(
            self.span,
            "parley.llm",
            {"parley.llm.provider": provider, "parley.llm.round": self._llm_rounds},
        )

    def tts_started(self, provider: str) -> None:
        if self.tts is None and not self._ended:
            self.tts = child(self.span, "parley.tts", {"parley.tts.provider": provider})

    def first_audio(self) -> None:
        if self.tts is not None:
            self.tts.add_event("first_audio")

    def tts_failed(self, error: BaseException) -> None:
        tts, self.tts = self.tts, None
        if tts is not None:
            end(tts, error)

    def tts_ended(self, characters: int) -> None:
        tts, self.tts = self.tts, None
        if tts is not None:
            tts.set_attribute("parley.tts.characters", characters)
            tts.end()

    def audio_sent(self) -> None:
        """The first frame went to the Edge: the playout starts."""
        if self.playout is None and not self._ended:
            self.playout = child(self.span, "parley.playout")

    def finish(self, turn: TurnMetrics, outcome: str) -> None:
        """End every span of the turn still open; ``outcome``: played, interrupted or
        dropped (never spoken). Idempotent."""
        if self._ended:
            return
        self._ended = True
        self.tts_ended(turn.tts_characters)
        if self.playout is not None:
            self.playout.set_attribute("parley.playout.interrupted", outcome != "played")
            self.playout.end()
        span = self.span
        span.set_attribute("parley.turn.outcome", outcome)
        span.set_attribute("parley.turn.tool_calls", turn.tool_calls)
        span.set_attribute("parley.turn.input_tokens", turn.input_tokens)
        span.set_attribute("parley.turn.output_tokens", turn.output_tokens)
        if turn.end_to_end is not None:
            span.set_attribute("parley.turn.end_to_end_ms", round(turn.end_to_end * 1000, 2))
        span.end()
