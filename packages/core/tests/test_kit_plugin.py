"""The ``testing`` plugin: registers the fakes lazily and builds them from spec strings."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest
from parley.edge import Edge
from parley.llm import LLM
from parley.plugins import Registrar, plugin_manager
from parley.realtime import Realtime
from parley.stt import STT
from parley.testing import FakeLLM, FakeRealtime, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge
from parley.testing import plugin as testing_plugin
from parley.tts import TTS
from parley.vad import VAD

EXPECTED = {
    ("stt", "fake"): (STT, FakeSTT),
    ("llm", "fake"): (LLM, FakeLLM),
    ("tts", "fake"): (TTS, FakeTTS),
    ("realtime", "fake"): (Realtime, FakeRealtime),
    ("vad", "fake"): (VAD, FakeVAD),
    ("edge", "memory"): (Edge, InMemoryEdge),
}


def registered() -> Registrar:
    register = Registrar("testing")
    testing_plugin.register_parts(register)
    return register


def test_the_plugin_declares_every_fake_for_the_current_api() -> None:
    assert testing_plugin.PARLEY_API == 1
    parts = {(p.kind, p.name): p for p in registered().parts}
    assert set(parts) == set(EXPECTED)
    for key, part in parts.items():
        base, cls = EXPECTED[key]
        factory = part.load()
        assert factory is cls
        assert isinstance(factory(), base)
        assert part.description
        assert part.deps_ok


def test_listing_reads_the_capabilities_each_fake_declares_on_its_class() -> None:
    entry = EntryPoint(name="testing", value="parley.testing.plugin", group="parley")
    with plugin_manager.isolated([entry]) as manager:
        (info,) = manager.plugins(capabilities=True)
    listed = {(p.kind, p.name): dict(p.capabilities) for p in info.parts}
    for key, (_, cls) in EXPECTED.items():
        built = dataclasses.asdict(cls().capabilities)
        assert listed[key] == {k: list(v) if isinstance(v, tuple) else v for k, v in built.items()}


def test_spec_strings_build_configured_fakes() -> None:
    entry = EntryPoint(name="testing", value="parley.testing.plugin", group="parley")
    with plugin_manager.isolated([entry]) as manager:
        stt = manager.resolve("stt", "fake?turn_detection=true&latency=0.25")
        assert isinstance(stt, FakeSTT)
        assert stt.capabilities.turn_detection
        assert stt.latency == 0.25
        llm = manager.resolve("llm", "fake/scripted?tokens_per_second=50")
        assert isinstance(llm, FakeLLM)
        assert llm.model == "scripted"
        assert llm.tokens_per_second == 50
        edge = manager.resolve("edge", "memory?realtime_playout=false&output_sample_rate=48000")
        assert isinstance(edge, InMemoryEdge)
        assert not edge.realtime_playout
        assert edge.capabilities.output_sample_rate == 48000
        tts = manager.resolve("tts", "fake", seconds_per_call=0.2)
        assert isinstance(tts, FakeTTS)
        assert tts.duration_for("anything") == 0.2


def test_the_entry_module_imports_none_of_the_fakes() -> None:
    code = (
        "import sys, parley.testing.plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith('parley.testing')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['parley.testing', 'parley.testing.plugin']"


def test_unknown_names_in_the_package_raise_attribute_error() -> None:
    import parley.testing

    with pytest.raises(AttributeError, match="NoSuchFake"):
        _ = parley.testing.NoSuchFake
    assert "FakeLLM" in dir(parley.testing)
