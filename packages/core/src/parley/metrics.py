"""Per-turn latency breakdown and per-session counters.

Times are `time.perf_counter()` readings. The number users care about is `end_to_end`:
end of user speech → first agent audio frame handed to the Edge.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, end - start)


@dataclass(slots=True)
class TurnMetrics:
    turn: int
    speech_id: str = ""
    user_text: str = ""
    end_of_speech: float | None = None  # VAD/STT saw the user stop
    final_transcript: float | None = None  # last final transcript of the turn arrived
    turn_committed: float | None = None  # the engine decided the user was done
    llm_first_token: float | None = None
    tts_first_audio: float | None = None
    first_audio_sent: float | None = None
    interrupted: bool = False
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tts_characters: int = 0

    @property
    def transcript_delay(self) -> float | None:
        return _span(self.end_of_speech, self.final_transcript)

    @property
    def endpointing_delay(self) -> float | None:
        return _span(self.final_transcript or self.end_of_speech, self.turn_committed)

    @property
    def llm_ttft(self) -> float | None:
        return _span(self.turn_committed, self.llm_first_token)

    @property
    def tts_ttfa(self) -> float | None:
        return _span(self.llm_first_token, self.tts_first_audio)

    @property
    def end_to_end(self) -> float | None:
        start = self.end_of_speech if self.end_of_speech is not None else self.turn_committed
        return _span(start, self.first_audio_sent)

    def to_dict(self) -> dict[str, Any]:
        """Durations in milliseconds, for events, data channels and the registry."""

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000, 2)

        origin = self.end_of_speech if self.end_of_speech is not None else self.turn_committed
        return {
            "turn_id": self.turn,  # the data channel's `turn_metrics` message field
            # offsets from the end of the user's speech (what the demo page's latency bar stacks)
            "first_token_ms": ms(_span(origin, self.llm_first_token)),
            "first_audio_ms": ms(_span(origin, self.tts_first_audio)),
            "first_audio_sent_ms": ms(_span(origin, self.first_audio_sent)),
            # per-stage durations
            "speech_id": self.speech_id,
            "transcript_ms": ms(self.transcript_delay),
            "endpointing_ms": ms(self.endpointing_delay),
            "llm_ttft_ms": ms(self.llm_ttft),
            "tts_ttfa_ms": ms(self.tts_ttfa),
            "end_to_end_ms": ms(self.end_to_end),
            "interrupted": self.interrupted,
            "tool_calls": self.tool_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tts_characters": self.tts_characters,
        }


@dataclass(slots=True)
class SessionMetrics:
    turns: int = 0
    interruptions: int = 0
    false_interruptions: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tts_characters: int = 0
    stt_audio_seconds: float = 0.0
    errors: int = 0
    last_turn: dict[str, Any] = field(default_factory=dict)

    def add_turn(self, turn: TurnMetrics) -> None:
        self.turns += 1  # tool calls are counted as they run (`parley.tool_runner`)
        self.input_tokens += turn.input_tokens
        self.output_tokens += turn.output_tokens
        self.tts_characters += turn.tts_characters
        self.last_turn = turn.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
