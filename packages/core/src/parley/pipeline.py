"""Pipelines: which parts a session runs, and the policies it runs them with.

`CascadingPipeline` is STT → LLM → TTS (with optional VAD and turn detector);
`RealtimePipeline` is one speech-to-speech model. Parts may be objects or spec strings
(``"openai/gpt-4o-mini"``, ``"deepgram?model=nova-3"``, ``"local"``) resolved through the
plugin registry when the session starts. Any object with ``create_runner(host, connection)``
is a pipeline (`parley.host.Pipeline`): a new kind is one module with its runner.

A batch STT (whole utterances) needs a VAD to cut the audio; without ``vad=`` the pipeline
takes the default VAD of the installed plugins (Silero, from parley-silero) and logs it.
"""

from __future__ import annotations

import logging
from typing import Any

from parley.cascade import CascadingParts, CascadingRunner
from parley.edge import Connection
from parley.host import Pipeline, Runner, RunnerHost
from parley.llm import LLM
from parley.policy import InterruptionOptions, ProviderTimeouts, ToolOptions, TurnOptions
from parley.realtime import Realtime
from parley.stt import STT, BatchSTT
from parley.tts import TTS
from parley.turn import TurnDetector
from parley.vad import VAD

logger = logging.getLogger("parley.pipeline")

# "The default part of a kind" is what its offline preset names: the zero-key plugins set
# it (parley-silero sets vad "local" -> "silero"), and no fake or cloud part ever does.
_DEFAULT_SPEC = "local"
_DEFAULT_VAD_PACKAGE = "parley-silero"


def _resolve(kind: str, part: Any) -> Any:
    if part is None or not isinstance(part, str):
        return part
    from parley.plugins import resolve

    return resolve(kind, part)


class CascadingPipeline:
    def __init__(
        self,
        stt: STT | BatchSTT | str | None = None,
        llm: LLM | str | None = None,
        tts: TTS | str | None = None,
        vad: VAD | str | None = None,
        turn_detector: TurnDetector | str | None = None,
        *,
        turn: TurnOptions | None = None,
        interruption: InterruptionOptions | None = None,
        tools: ToolOptions | None = None,
        timeouts: ProviderTimeouts | None = None,
        max_history: int | None = None,
        first_piece_words: int | None = None,
    ) -> None:
        self.stt = stt
        self.llm = llm
        self.tts = tts
        self.vad = vad
        self.turn_detector = turn_detector
        self.turn = turn or TurnOptions()
        self.interruption = interruption or InterruptionOptions()
        self.tool_options = tools or ToolOptions()
        self.timeouts = timeouts or ProviderTimeouts()
        self.max_history = max_history
        # Cut the first spoken piece after this many words when no sentence end comes first:
        # speech starts sooner at the cost of a phrase break (None: whole sentences/clauses).
        self.first_piece_words = first_piece_words

    def build(self) -> CascadingParts:
        """Resolve spec strings and wrap a batch STT with VAD segmentation."""
        missing = [name for name in ("stt", "llm", "tts") if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"CascadingPipeline needs stt, llm and tts; missing: {', '.join(missing)}. "
                'Pass parts or spec strings, e.g. stt="local".'
            )
        vad = _resolve("vad", self.vad)
        stt = _resolve("stt", self.stt)
        if isinstance(stt, BatchSTT):
            if vad is None:
                vad = _default_vad(type(stt).__name__)
            from parley.segmenting import VADSegmentedSTT

            stt = VADSegmentedSTT(stt, vad)
        llm = _resolve("llm", self.llm)
        tts = _resolve("tts", self.tts)
        turn_detector = _resolve("turn", self.turn_detector)
        for name, value, kind in (("stt", stt, STT), ("llm", llm, LLM), ("tts", tts, TTS)):
            if not isinstance(value, kind):
                raise TypeError(
                    f"{name} must be a {kind.__name__} (or a spec string), got {value!r}"
                )
        if vad is not None and not isinstance(vad, VAD):
            raise TypeError(f"vad must be a VAD (or a spec string), got {vad!r}")
        return CascadingParts(stt, llm, tts, vad, turn_detector)

    def create_runner(self, host: RunnerHost, connection: Connection) -> Runner:
        return CascadingRunner(host, connection, self, self.build())


def _default_vad(stt_name: str) -> Any:
    """The installed default VAD for a batch STT that was given none, or a ValueError that
    says what to install."""
    from parley.plugins import UnknownPartError, list_parts, parse_spec, plugin_manager, resolve
    from parley.plugins.errors import package_for

    needs = f"{stt_name} transcribes whole utterances and needs a VAD to cut them"
    try:
        part, _ = plugin_manager().registry.find("vad", parse_spec(_DEFAULT_SPEC))
    except UnknownPartError:
        installed = ", ".join(p.name for p in list_parts("vad")) or "none"
        raise ValueError(
            f"{needs}, and no default VAD is installed: `pip install {_DEFAULT_VAD_PACKAGE}` "
            f"(then Silero is used by default), or pass vad=... (installed VADs: {installed})"
        ) from None
    if not part.deps_ok:
        raise ValueError(
            f"{needs}; the default VAD {part.name!r} (plugin {part.plugin!r}) cannot load "
            f"because {', '.join(part.missing)} is not installed: reinstall its plugin "
            f"(`pip install {package_for(part.plugin)}`) or pass vad=..."
        )
    logger.info(
        "%s needs a VAD and none was given: using the default VAD %r (plugin %r)",
        stt_name,
        part.name,
        part.plugin,
    )
    return resolve("vad", _DEFAULT_SPEC)


class RealtimePipeline:
    def __init__(
        self,
        model: Realtime | str,
        *,
        interruption: InterruptionOptions | None = None,
        tools: ToolOptions | None = None,
        timeouts: ProviderTimeouts | None = None,
    ) -> None:
        self.model = model
        self.interruption = interruption or InterruptionOptions()
        self.tool_options = tools or ToolOptions()
        self.timeouts = timeouts or ProviderTimeouts()  # the runner reads ``realtime_stall``

    def build(self) -> Realtime:
        model = _resolve("realtime", self.model)
        if not isinstance(model, Realtime):
            raise TypeError(f"model must be a Realtime model (or a spec string), got {model!r}")
        return model

    def create_runner(self, host: RunnerHost, connection: Connection) -> Runner:
        from parley.realtime_runner import RealtimeRunner  # only realtime sessions load it

        return RealtimeRunner(host, connection, self, self.build())


RealTimePipeline = RealtimePipeline

__all__ = [
    "CascadingParts",
    "CascadingPipeline",
    "Pipeline",
    "RealTimePipeline",
    "RealtimePipeline",
]
