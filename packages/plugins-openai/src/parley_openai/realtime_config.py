"""`OpenAIRealtimeConfig`: the settings object VideoSDK programs hand to ``OpenAIRealtime``.

``OpenAIRealtime(model=..., config=OpenAIRealtimeConfig(voice="alloy", ...))`` runs as it
does there; each field maps onto an `OpenAIRealtime` setting (see `apply`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_VOICE = "marin"
DEFAULT_TRANSCRIPTION_MODEL = "gpt-transcribe"


@dataclass(frozen=True)
class OpenAIRealtimeConfig:
    """- ``voice``: the output voice.
    - ``turn_detection``: ``"server_vad"``, ``"semantic_vad"``, a full mapping, or None (the
      engine's own VAD decides turns).
    - ``input_audio_transcription``: a model name or ``{"model": ...}``; None: no user
      transcripts.
    - ``tool_choice``: ``"auto"``, ``"none"``, ``"required"`` or a tool's name.
    - ``modalities``: must include ``"audio"`` (a voice agent speaks); ``"text"`` comes with it.
    - ``temperature``: refused unless None: OpenAI's GA Realtime API has no such setting.
    """

    voice: str = DEFAULT_VOICE
    turn_detection: str | Mapping[str, Any] | None = "server_vad"
    input_audio_transcription: str | Mapping[str, Any] | None = DEFAULT_TRANSCRIPTION_MODEL
    tool_choice: str = "auto"
    modalities: Sequence[str] = field(default=("text", "audio"))
    temperature: float | None = None

    def __post_init__(self) -> None:
        if "audio" not in self.modalities:
            raise ValueError(
                f"OpenAIRealtimeConfig.modalities must include 'audio', got {list(self.modalities)}"
            )
        if self.temperature is not None:
            raise ValueError(
                "OpenAIRealtimeConfig.temperature: OpenAI's GA Realtime API has no temperature "
                "setting; leave it out"
            )

    @property
    def transcription_model(self) -> str | None:
        value = self.input_audio_transcription
        if isinstance(value, Mapping):
            model = value.get("model")
            return str(model) if model else None
        return value

    def session_options(self) -> dict[str, Any]:
        """What `OpenAIRealtime.session_config` merges into ``session.update``."""
        choice = self.tool_choice
        if choice in ("auto", "none", "required"):
            return {"tool_choice": choice}
        return {"tool_choice": {"type": "function", "name": choice}}
