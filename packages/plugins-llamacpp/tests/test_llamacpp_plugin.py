"""The plugin entry point: light registration, lazy classes, resolution by spec string."""

from __future__ import annotations

import subprocess
import sys

from parley.plugins import resolve
from parley_llamacpp.llm import LlamaCppLLM


def test_entry_module_registers_without_importing_llama_cpp() -> None:
    code = (
        "import sys, parley_llamacpp as p\n"
        "calls = []\n"
        "class R:\n"
        "    def __call__(self, *a, **k): calls.append(('part', a, k))\n"
        "    def preset(self, *a): calls.append(('preset', a))\n"
        "p.register_parts(R())\n"
        "assert p.PARLEY_API == 1\n"
        "assert 'llama_cpp' not in sys.modules, 'entry module must stay light'\n"
        "print(calls)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "('llm', 'llamacpp', 'parley_llamacpp.llm:LlamaCppLLM')" in out
    assert "'requires': ('llama_cpp',)" in out
    assert "('preset', ('local', 'llm', 'llamacpp?history_turns=0'))" in out


def test_plugin_module_exposes_the_llm_lazily() -> None:
    from parley.plugins import llamacpp

    assert llamacpp.LLM is LlamaCppLLM
    assert llamacpp.LlamaCppLLM is LlamaCppLLM


def test_local_preset_and_spec_options_build_the_llm() -> None:
    local = resolve("llm", "local")
    assert isinstance(local, LlamaCppLLM)
    assert local.model_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert local.history_turns == 0
    tuned = resolve("llm", "llamacpp?max_tokens=32")
    assert isinstance(tuned, LlamaCppLLM)
    assert tuned.sampling.max_tokens == 32
