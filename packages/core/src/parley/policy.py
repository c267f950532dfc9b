"""Turn-taking and barge-in settings. Waits here are policy, chosen by the user, not overhead."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnOptions:
    """When is the user done speaking?

    After the user stops (VAD speech end, or a final transcript when there is no VAD), the
    engine waits ``min_endpointing_delay`` seconds for more speech before it answers. With a
    turn detector, an unlikely end of turn (probability below the detector's threshold) waits
    up to ``max_endpointing_delay`` instead. An STT that reports ``end_of_turn`` itself ends
    the turn at once. ``final_transcript_timeout`` bounds the wait for a late final transcript
    after VAD speech end.

    ``preemptive_reply``: start the reply on a transcript that comes while the engine still
    waits for the end of the turn, and play it only once the turn is committed with the same
    words (`parley.preemption`): the models' time overlaps the wait. Costs an LLM and TTS
    start each time the user goes on speaking after a pause.
    """

    min_endpointing_delay: float = 0.4
    max_endpointing_delay: float = 2.0
    final_transcript_timeout: float = 2.0
    preemptive_reply: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.min_endpointing_delay <= self.max_endpointing_delay:
            raise ValueError(
                "need 0 <= min_endpointing_delay <= max_endpointing_delay, got "
                f"{self.min_endpointing_delay} and {self.max_endpointing_delay}"
            )


# Said over the agent, these ask it to stop or only acknowledge it: not questions to answer.
# "yeah" is also what Whisper often hears for a short, clipped "stop".
INTERRUPTION_ONLY_WORDS: tuple[str, ...] = (
    "stop",
    "wait",
    "hold on",
    "hang on",
    "pause",
    "shush",
    "quiet",
    "enough",
    "mm hm",
    "mm hmm",
    "mhm",
    "hmm",
    "uh huh",
    "okay",
    "ok",
    "yeah",
    "yep",
    "right",
    "sure",
    "got it",
    "i see",
    "please",
    "no",
)


@dataclass(frozen=True, slots=True)
class InterruptionOptions:
    """Barge-in policy while the agent speaks.

    On user speech the agent pauses at once (its queued audio is flushed from the Edge). The
    pause becomes an interruption as soon as either condition holds: the user has spoken
    ``min_duration`` seconds, or the transcript has ``min_words`` words (``0``: no word
    condition); a committed user turn confirms it too. If neither happens within
    ``false_interruption_timeout`` seconds after the user goes quiet, it was a false
    interruption (a cough, "mm-hm") and the agent resumes where it stopped when
    ``resume_false_interruption`` is set (otherwise it stops). ``enabled=False`` makes the
    agent ignore the user while it speaks. Both pipeline kinds apply it (`parley.barge_in`).

    ``interruption_only_words``: a user turn spoken over the agent that says nothing but
    these words and phrases ("Stop.", "wait, wait", "mm-hm", "okay") stops the agent and is
    not answered: it never reaches the LLM nor the history. Case and punctuation are ignored,
    a hyphen counts as a space. ``()`` answers every turn. The cascading pipeline applies it
    (a realtime model decides its own turns).
    """

    enabled: bool = True
    min_duration: float = 0.5
    min_words: int = 0
    false_interruption_timeout: float = 1.0
    resume_false_interruption: bool = True
    interruption_only_words: tuple[str, ...] = INTERRUPTION_ONLY_WORDS

    def __post_init__(self) -> None:
        words: object = self.interruption_only_words  # typed as a tuple; a str slips through
        if isinstance(words, str):
            raise TypeError(
                "interruption_only_words must be a tuple of words or phrases, not one string"
            )
        # A list given by the caller must not change under a frozen options object.
        object.__setattr__(self, "interruption_only_words", tuple(self.interruption_only_words))


@dataclass(frozen=True, slots=True)
class ToolOptions:
    """Tool execution: calls of one round run in parallel, each bounded by ``timeout``
    (a tool's own timeout wins); after ``max_rounds`` rounds the model must answer in text."""

    timeout: float = 20.0
    max_rounds: int = 5


@dataclass(frozen=True, slots=True)
class ProviderTimeouts:
    """A provider never hangs a session: a stream that produces nothing for this long fails.

    ``llm_first_token`` and ``tts_first_audio`` bound the wait for a stream's first chunk
    (a cold model may need long); ``llm_stall`` and ``tts_stall`` bound each gap between
    chunks after that. A stalled stream ends the turn with a recoverable `ErrorOccurred`
    naming the provider, and the session listens again. ``stt_stall`` bounds a streaming
    STT's silence while the user speaks or a turn waits for its transcript: the stuck stream
    is closed and reopened, so the next utterance is heard. ``realtime_stall`` bounds a
    realtime model's silence while it answers (`RealtimePipeline(timeouts=...)`): the
    response ends as interrupted. The stall bounds are generous enough for a slow local
    model on a loaded machine.
    """

    llm_first_token: float = 15.0
    tts_first_audio: float = 10.0
    llm_stall: float = 10.0
    tts_stall: float = 10.0
    stt_stall: float = 10.0
    realtime_stall: float = 15.0
