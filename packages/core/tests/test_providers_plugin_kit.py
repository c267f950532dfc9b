"""The rest of the plugin kit: lazy exports for entry modules, and `until`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import types

import pytest
from parley.plugins.lazy import lazy_exports
from parley.testing import until


def make_module(name: str, exports: dict[str, str]) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__getattr__, module.__dir__ = lazy_exports(name, exports)  # type: ignore[attr-defined,method-assign]
    sys.modules[name] = module
    return module


def test_lazy_exports_import_on_first_read_and_keep_the_value() -> None:
    sys.modules.pop("json.decoder", None)
    module = make_module("kit_lazy_a", {"Decoder": "json.decoder:JSONDecoder"})
    try:
        assert "json.decoder" not in sys.modules
        assert "Decoder" in dir(module)
        from json.decoder import JSONDecoder

        assert module.Decoder is JSONDecoder
        assert vars(module)["Decoder"] is JSONDecoder  # cached: __getattr__ is not asked again
        with pytest.raises(AttributeError, match="'kit_lazy_a' has no attribute 'Missing'"):
            _ = module.Missing
    finally:
        del sys.modules["kit_lazy_a"]


def test_lazy_exports_follow_dotted_attributes_and_refuse_bad_targets() -> None:
    module = make_module("kit_lazy_b", {"join": "os:path.join"})
    try:
        import os.path

        assert module.join is os.path.join
    finally:
        del sys.modules["kit_lazy_b"]
    with pytest.raises(ValueError, match=r"not 'package\.module:attribute'"):
        lazy_exports("kit_lazy_c", {"X": "just.a.module"})


def test_plugin_entry_modules_stay_light_and_export_lazily() -> None:
    code = (
        "import sys\n"
        "from parley.plugins import openai\n"
        "light = 'parley_openai.llm' not in sys.modules and 'openai' not in sys.modules\n"
        "from parley_openai import LLM\n"
        "print(light, openai.LLM is LLM, LLM.__module__, 'LLM' in dir(openai))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "parley_openai.llm", "True"]


async def test_until_returns_the_truthy_value_of_a_sync_or_async_predicate() -> None:
    ticks: list[int] = []

    def grown() -> list[int] | None:
        ticks.append(len(ticks))
        return ticks if len(ticks) >= 3 else None

    assert await until(grown) == [0, 1, 2]

    async def ready() -> str:
        await asyncio.sleep(0)
        return "yes"

    assert await until(ready) == "yes"


async def test_until_retries_assertions_and_reports_the_last_one() -> None:
    calls = 0

    def check() -> bool:
        nonlocal calls
        calls += 1
        assert calls > 2, f"only {calls} calls"
        return True

    assert await until(check) is True

    def never() -> bool:
        raise AssertionError("no answer")

    with pytest.raises(
        AssertionError, match=r"waited 0.05 s for the answer; last: no answer"
    ) as info:
        await until(never, 0.05, what="the answer")
    assert isinstance(info.value.__cause__, AssertionError)


async def test_until_names_the_predicate_when_it_times_out() -> None:
    def nothing_yet() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"waited 0.05 s for .*nothing_yet$"):
        await until(nothing_yet, 0.05)


# --- entry points read without importlib.metadata -----------------------------------------------
