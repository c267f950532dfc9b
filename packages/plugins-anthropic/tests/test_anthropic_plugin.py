"""parley-anthropic as a plugin: registration, lazy import, keys, and its dependencies."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, entry_points

import parley_anthropic
import pytest
from packaging.requirements import Requirement
from parley.plugins.registry import Registrar
from parley_anthropic import MissingAPIKey
from parley_anthropic.llm import AnthropicLLM

# The SDKs of the other provider plugins: installing parley-anthropic must pull none of them.
OTHER_PROVIDER_SDKS = {"openai", "google-genai", "deepgram-sdk", "elevenlabs"}


def test_entry_point_and_part() -> None:
    (entry,) = [e for e in entry_points(group="parley") if e.name == "anthropic"]
    assert entry.value == "parley_anthropic"
    assert parley_anthropic.PARLEY_API == 1
    register = Registrar("anthropic")
    parley_anthropic.register_parts(register)
    (part,) = register.parts
    assert (part.kind, part.name, part.target) == (
        "llm",
        "anthropic",
        "parley_anthropic.llm:AnthropicLLM",
    )
    assert part.requires == ("anthropic",)
    assert parley_anthropic.LLM is AnthropicLLM


def test_from_parley_plugins_and_spec_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    from parley.plugins import anthropic, resolve

    assert anthropic.LLM("claude-x").model == "claude-x"
    llm = resolve("llm", "anthropic/claude-sonnet-5-5?max_tokens=300")
    assert isinstance(llm, AnthropicLLM)
    assert (llm.model, llm.max_tokens) == ("claude-sonnet-5-5", 300)


def test_the_entry_module_does_not_import_the_sdk() -> None:
    code = "import sys, parley_anthropic; print('anthropic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with pytest.raises(MissingAPIKey, match="ANTHROPIC_API_KEY"):
        AnthropicLLM()


def test_key_and_base_url_from_arguments_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    assert AnthropicLLM()._client.api_key == "sk-ant-env"
    assert AnthropicLLM(api_key="sk-ant-arg")._client.api_key == "sk-ant-arg"
    assert AnthropicLLM(base_url="http://localhost:9000").base_url == "http://localhost:9000"
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    proxy = AnthropicLLM(base_url="http://localhost:9000")  # a local gateway may want no key
    assert proxy._client.api_key == "no-key"


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
    closure = requirement_closure("parley-anthropic")
    assert {"anthropic", "parley-core"} <= closure
    assert not closure & OTHER_PROVIDER_SDKS
