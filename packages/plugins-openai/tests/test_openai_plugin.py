"""parley-openai as a plugin: registration, lazy import, keys, and its dependencies."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, entry_points

import parley_openai
import pytest
from packaging.requirements import Requirement
from parley.plugins.capabilities import declared
from parley.plugins.registry import Registrar
from parley_openai import MissingAPIKey
from parley_openai.llm import OpenAILLM
from parley_openai.realtime import OpenAIRealtime
from parley_openai.stt import OpenAISTT
from parley_openai.tts import OpenAITTS

# The SDKs of the other provider plugins: installing parley-openai must pull none of them.
OTHER_PROVIDER_SDKS = {"anthropic", "google-genai", "deepgram-sdk", "elevenlabs"}


def test_entry_point_and_parts() -> None:
    (entry,) = [e for e in entry_points(group="parley") if e.name == "openai"]
    assert entry.value == "parley_openai"
    assert parley_openai.PARLEY_API == 1
    register = Registrar("openai")
    parley_openai.register_parts(register)
    parts = {(p.kind, p.name): p for p in register.parts}
    assert set(parts) == {
        ("llm", "openai"),
        ("stt", "openai"),
        ("tts", "openai"),
        ("realtime", "openai"),
    }
    # A batch STT: the listing reads that from the class (BatchSTT), not from register().
    assert declared("stt", parts[("stt", "openai")].load())["batch"] is True
    assert parts[("realtime", "openai")].target == "parley_openai.realtime:OpenAIRealtime"
    assert parley_openai.LLM is OpenAILLM
    assert parley_openai.STT is OpenAISTT
    assert parley_openai.TTS is OpenAITTS
    assert parley_openai.Realtime is OpenAIRealtime


def test_from_parley_plugins_import_openai_and_spec_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    from parley.plugins import openai, resolve

    assert openai.LLM("gpt-x").model == "gpt-x"
    llm = resolve("llm", "openai/gpt-4.1-nano?temperature=0.5")
    assert isinstance(llm, OpenAILLM)
    assert (llm.model, llm.options) == ("gpt-4.1-nano", {"temperature": 0.5})


def test_the_entry_module_does_not_import_the_sdk() -> None:
    code = "import sys, parley_openai; print('openai' in sys.modules, 'websockets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("part", [OpenAILLM, OpenAISTT, OpenAITTS, OpenAIRealtime])
def test_a_missing_key_fails_at_construction(part: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(MissingAPIKey, match="OPENAI_API_KEY"):
        part()


def test_keys_come_from_the_environment_or_the_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert OpenAILLM()._client.api_key == "sk-env"
    assert OpenAILLM(api_key="sk-arg")._client.api_key == "sk-arg"


def test_a_compatible_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = OpenAILLM("llama3.2", base_url="http://localhost:11434/v1")
    assert llm.base_url == "http://localhost:11434/v1/"
    assert llm._client.api_key == "no-key"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    assert OpenAILLM().base_url == "http://localhost:8000/v1/"


def requirement_closure(name: str) -> set[str]:
    """Every distribution that installing ``name`` pulls in (from installed metadata)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        key = current.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = distribution(current).requires or []
        except PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_installing_it_pulls_no_other_providers_sdk() -> None:
    closure = requirement_closure("parley-openai")
    assert {"openai", "websockets", "parley-core"} <= closure
    assert not closure & OTHER_PROVIDER_SDKS
