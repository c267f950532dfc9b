"""How long the VAD takes to say the user stopped, and whether it cuts a sentence in two.

The browser bench showed most of the wait a person hears before an answer is the VAD's: after
the last loud sample Silero's speech probability stays above ``deactivation`` for a while, and
then the stream waits ``min_silence``. This feeds Piper speech (the browser bench's questions,
and sentences with commas, whose pauses must not end the turn) to the Silero VAD in 20 ms
frames at 48 kHz, as the WebRTC edge does, and prints for each `VADOptions` variant:

- end delay: from the end of the speech (last 10 ms block within 30 dB of the peak) to the
  frame that brought ``speech_ended``, p50 and max;
- splits: ``speech_ended`` events before the speech's end (a turn cut in two), over all clips.

Each variant runs on the clean clip and on one with quiet noise (-60 dBFS) mixed in, as a real
microphone has. The first variant is the baseline (`VADOptions` defaults).

Run: ``python bench/vad_end.py [--variant activation,deactivation,min_speech,min_silence ...]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _common import header  # noqa: E402
from browser_voice_to_voice import QUESTIONS  # noqa: E402  (what the browser bench asks)
from parley.frames import AudioFrame  # noqa: E402
from parley.vad import VADOptions  # noqa: E402
from parley_piper.tts import PiperTTS  # noqa: E402
from parley_silero import SileroVAD  # noqa: E402

# Imported after sys.path is set: tests/ is not a package.
from spoken_audio import speech_bounds, spoken_question  # type: ignore[import-not-found]  # noqa: E402

# Pauses inside a sentence that must not end the turn.
WITH_PAUSES = (
    "Well, I was thinking, maybe, we could go to Paris, what is the weather there?",
    "First, the eggs; then, the flour; and then, slowly, the milk.",
    "Hmm, let me see, how warm is it, right now, in Oslo?",
    "So, about the trip, the one to Rome, do I need a coat?",
)
RATE = 48000
FRAME = RATE // 50  # 20 ms, as WebRTC delivers it
TRAILING = 1.5  # seconds of silence after each clip
NOISE_DBFS = -60.0


def frames_of(samples: np.ndarray) -> list[AudioFrame]:
    pad = (-len(samples)) % FRAME
    samples = np.concatenate([samples, np.zeros(pad, np.int16)])
    return [AudioFrame(samples[i : i + FRAME], RATE) for i in range(0, len(samples), FRAME)]


@dataclass(slots=True)
class ClipResult:
    end: float | None = None  # seconds from the speech's end to speech_ended
    pause: float | None = None  # seconds from the speech's end to the pause that led to it
    splits: int = 0  # speech_ended before the speech's end
    early_pauses: int = 0  # pauses inside speech (each costs a speculative decode)


def run_clip(vad: SileroVAD, samples: np.ndarray, speech_end: float) -> ClipResult:
    stream = vad.stream()
    result = ClipResult()
    clock = 0.0
    pause_start: float | None = None  # when `pausing` last went up
    for frame in frames_of(samples):
        clock += FRAME / RATE
        for event in stream.push(frame):
            if event.type != "speech_ended":
                continue
            if clock < speech_end:
                result.splits += 1
                pause_start = None
                continue
            result.end = clock - speech_end
            result.pause = (pause_start if pause_start is not None else clock) - speech_end
            return result
        if stream.pausing and pause_start is None:
            pause_start = clock
        elif not stream.pausing and pause_start is not None:
            result.early_pauses += 1  # speech went on: that speculative decode is wasted
            pause_start = None
    return result


def parse_variant(text: str) -> VADOptions:
    """``activation,deactivation,min_speech,min_silence[,pause_below_peak_db]``"""
    values = text.split(",")
    pause = float(values[4]) if len(values) > 4 and values[4] != "none" else None
    activation, deactivation, min_speech, min_silence = (float(x) for x in values[:4])
    return VADOptions(activation, deactivation, min_speech, min_silence, pause)


async def clips() -> list[tuple[str, np.ndarray, float, bool]]:
    """(text, 48 kHz int16 samples with trailing silence, speech end in s, has pauses)."""
    tts = PiperTTS()
    out = []
    try:
        for text in QUESTIONS + WITH_PAUSES:
            speech = await spoken_question(text, tts)
            samples = np.concatenate(
                [
                    np.zeros(RATE // 5, np.int16),  # 0.2 s lead-in
                    speech.to_int16().data[:, 0],
                    np.zeros(round(TRAILING * RATE), np.int16),
                ]
            )
            end = 0.2 + speech_bounds(speech)[1]
            out.append((text, samples, end, text in WITH_PAUSES))
    finally:
        await tts.aclose()
    return out


def with_noise(samples: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 32768 * 10 ** (NOISE_DBFS / 20), len(samples))
    return np.clip(samples + noise, -32768, 32767).astype(np.int16)


def _p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="activation,deactivation,min_speech,min_silence (repeatable)",
    )
    args = parser.parse_args()
    variants = [VADOptions()] + [parse_variant(v) for v in args.variant]
    if not args.variant:
        variants += [
            VADOptions(pause_below_peak_db=None),
            VADOptions(pause_below_peak_db=20.0),
            VADOptions(pause_below_peak_db=40.0),
            VADOptions(deactivation=0.5),
            VADOptions(min_silence=0.256),
        ]
    header("vad_end: Silero VAD end-of-speech delay and splits on Piper speech")
    data = await clips()
    print(f"  {len(QUESTIONS)} questions + {len(WITH_PAUSES)} sentences with pauses\n")
    print(
        f"  {'act/deact/speech/silence/pause dB':<34}{'audio':<7}{'pause p50':>9}{'max':>9}"
        f"{'end p50':>9}{'max':>9}{'splits':>8}{'wasted':>8}{'missed':>8}"
    )
    for options in variants:
        vad = SileroVAD(options)
        for noisy in (False, True):
            results = [
                run_clip(vad, with_noise(samples, index) if noisy else samples, end)
                for index, (_, samples, end, _) in enumerate(data)
            ]
            ends = [r.end * 1000 for r in results if r.end is not None]
            pauses = [r.pause * 1000 for r in results if r.pause is not None]
            name = (
                f"{options.activation}/{options.deactivation}/{options.min_speech}/"
                f"{options.min_silence}/{options.pause_below_peak_db}"
            )
            print(
                f"  {name:<34}{'noise' if noisy else 'clean':<7}"
                f"{_p50(pauses):>7.0f}ms{max(pauses, default=float('nan')):>7.0f}ms"
                f"{_p50(ends):>7.0f}ms{max(ends, default=float('nan')):>7.0f}ms"
                f"{sum(r.splits for r in results):>8}"
                f"{sum(r.early_pauses for r in results):>8}"
                f"{sum(r.end is None for r in results):>8}"
            )
        await vad.aclose()


if __name__ == "__main__":
    asyncio.run(main())
