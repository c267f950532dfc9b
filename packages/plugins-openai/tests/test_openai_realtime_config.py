"""`OpenAIRealtimeConfig`: VideoSDK's settings object, imported and applied as they write it."""

from __future__ import annotations

import pytest


def test_the_videosdk_import_line_and_config_shape_the_session() -> None:
    from parley.plugins.openai import OpenAIRealtime, OpenAIRealtimeConfig

    config = OpenAIRealtimeConfig(
        voice="alloy",
        turn_detection={"type": "semantic_vad", "eagerness": "high"},
        input_audio_transcription={"model": "whisper-1"},
        tool_choice="get_weather",
        modalities=["text", "audio"],
    )
    model = OpenAIRealtime(model="gpt-realtime", api_key="sk-test", config=config)
    session = model.session_config("Be brief.", [])
    assert session["audio"]["output"]["voice"] == "alloy"
    assert session["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
    }
    assert session["audio"]["input"]["transcription"] == {"model": "whisper-1"}
    assert session["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert session["output_modalities"] == ["audio"]


def test_config_without_transcription_or_server_turns() -> None:
    from parley.plugins.openai import OpenAIRealtime, OpenAIRealtimeConfig

    config = OpenAIRealtimeConfig(turn_detection=None, input_audio_transcription=None)
    model = OpenAIRealtime(api_key="sk-test", config=config)
    session = model.session_config("", [])
    assert session["audio"]["input"]["turn_detection"] is None
    assert "transcription" not in session["audio"]["input"]
    assert session["tool_choice"] == "auto"
    assert not model.capabilities.server_vad


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", 0.8, "no temperature setting"),
        ("modalities", ["text"], "must include 'audio'"),
    ],
)
def test_settings_that_cannot_work_are_refused(field: str, value: object, message: str) -> None:
    from parley.plugins.openai import OpenAIRealtimeConfig

    with pytest.raises(ValueError, match=message):
        OpenAIRealtimeConfig(**{field: value})  # type: ignore[arg-type]
