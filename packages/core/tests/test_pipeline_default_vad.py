"""A batch STT without ``vad=`` gets the installed default VAD (Silero when installed), and
without one the error names the package to install."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from importlib.metadata import EntryPoint

import pytest
from parley import CascadingPipeline
from parley.plugins import ParleyPluginManager, Registrar, hookimpl, plugin_manager
from parley.segmenting import VADSegmentedSTT
from parley.testing import FakeBatchSTT, FakeLLM, FakeSTT, FakeTTS, FakeVAD

TESTING = EntryPoint(name="testing", value="parley.testing.plugin", group="parley")


class DefaultVADPlugin:
    """A plugin that offers a VAD and makes it the default, as parley-silero does."""

    PARLEY_API = 1

    @hookimpl
    def register_parts(self, register: Registrar) -> None:
        register("vad", "energy", "parley.testing.vad:FakeVAD", description="test VAD")
        register.preset("local", "vad", "energy?threshold=0.2")


class BrokenVADPlugin:
    """The default VAD's plugin is installed but a module it needs is not."""

    PARLEY_API = 1

    @hookimpl
    def register_parts(self, register: Registrar) -> None:
        register(
            "vad",
            "heavy",
            "parley.testing.vad:FakeVAD",
            requires=("parley_no_such_module_installed",),
        )
        register.preset("local", "vad", "heavy")


@pytest.fixture
def only_testing() -> Iterator[ParleyPluginManager]:
    """The fakes (their VAD is never a default) and no other plugin."""
    with plugin_manager.isolated([TESTING]) as manager:
        yield manager


def batch_pipeline(**kwargs: object) -> CascadingPipeline:
    return CascadingPipeline(stt=FakeBatchSTT(), llm=FakeLLM(), tts=FakeTTS(), **kwargs)  # type: ignore[arg-type]


def test_the_installed_default_vad_cuts_a_batch_stt(
    only_testing: ParleyPluginManager, caplog: pytest.LogCaptureFixture
) -> None:
    only_testing.register(DefaultVADPlugin(), name="defaultvad")
    with caplog.at_level(logging.INFO, logger="parley.pipeline"):
        parts = batch_pipeline().build()
    assert isinstance(parts.stt, VADSegmentedSTT)
    assert isinstance(parts.vad, FakeVAD)
    assert parts.stt.vad is parts.vad  # one VAD, shared with the engine
    assert parts.vad.threshold == 0.2  # the preset's options reached it
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("default VAD 'energy'" in line and "'defaultvad'" in line for line in lines)


def test_without_a_default_vad_the_error_names_the_package(
    only_testing: ParleyPluginManager,
) -> None:
    with pytest.raises(ValueError) as info:
        batch_pipeline().build()
    message = str(info.value)
    assert "FakeBatchSTT" in message and "needs a VAD" in message
    assert "pip install parley-silero" in message
    assert "fake" in message  # the VADs that are installed, to pass by name


def test_a_default_vad_whose_dependencies_are_missing_says_so(
    only_testing: ParleyPluginManager,
) -> None:
    only_testing.register(BrokenVADPlugin(), name="broken")
    with pytest.raises(ValueError, match="parley_no_such_module_installed") as info:
        batch_pipeline().build()
    assert "pip install parley-broken" in str(info.value)


def test_an_explicit_vad_or_a_streaming_stt_takes_no_default(
    only_testing: ParleyPluginManager,
) -> None:
    only_testing.register(DefaultVADPlugin(), name="defaultvad")
    mine = FakeVAD(threshold=0.5)
    parts = batch_pipeline(vad=mine).build()
    assert parts.vad is mine
    streaming = CascadingPipeline(stt=FakeSTT(), llm=FakeLLM(), tts=FakeTTS()).build()
    assert streaming.vad is None  # a streaming STT cuts its own turns


@pytest.mark.skipif(
    importlib.util.find_spec("parley_silero") is None, reason="parley-silero is not installed"
)
def test_silero_is_the_default_when_installed() -> None:
    from parley_silero import SileroVAD

    parts = batch_pipeline().build()
    assert isinstance(parts.vad, SileroVAD)
