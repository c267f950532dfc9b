"""Browser-side audio for tests and benchmarks of the demo page, over CDP.

- ``STEREO_RECORDER_JS``: records, in its own AudioContext, the page's microphone track (left)
  and the agent's track (right) sample by sample, so a test can time a turn independently of
  the page's own measurement (``window.parleyTurns``).
- ``FAKE_MIC_JS``: replaces ``getUserMedia`` with a WebAudio track that plays clips on demand
  (``fakeMic.load(name, base64 int16 48 kHz)``, ``fakeMic.play(name)``), for runs of many
  questions where each waits for the previous answer. Install it before the page loads
  (``Page.addScriptToEvaluateOnNewDocument``).
- ``pcm_base64`` / ``decode_stereo`` move audio between Python and the page.
"""

from __future__ import annotations

import base64

import numpy as np
import numpy.typing as npt
from parley.frames import AudioFrame

STEREO_RECORDER_JS = """
(() => {
  const rec = { left: [], right: [], length: 0 };
  rec.start = (rate) => {
    const context = new AudioContext({ sampleRate: rate });
    const merger = context.createChannelMerger(2);
    context.createMediaStreamSource(parley.localStream).connect(merger, 0, 0);
    context.createMediaStreamSource(parley.remoteStream).connect(merger, 0, 1);
    const tap = context.createScriptProcessor(4096, 2, 2);
    const mute = context.createGain();
    mute.gain.value = 0;
    tap.onaudioprocess = (event) => {
      rec.left.push(new Float32Array(event.inputBuffer.getChannelData(0)));
      rec.right.push(new Float32Array(event.inputBuffer.getChannelData(1)));
      rec.length += event.inputBuffer.length;
    };
    merger.connect(tap);
    tap.connect(mute);
    mute.connect(context.destination);
    rec.context = context;
    return context.sampleRate;
  };
  rec.take = () => {
    const pcm = new Int16Array(rec.length * 2);
    let at = 0;
    for (let c = 0; c < rec.left.length; c++) {
      const l = rec.left[c], r = rec.right[c];
      for (let i = 0; i < l.length; i++, at += 2) {
        pcm[at] = Math.max(-1, Math.min(1, l[i])) * 32767;
        pcm[at + 1] = Math.max(-1, Math.min(1, r[i])) * 32767;
      }
    }
    let binary = "";
    const bytes = new Uint8Array(pcm.buffer);
    for (let i = 0; i < bytes.length; i += 8192) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    }
    return btoa(binary);
  };
  window.stereoRecorder = rec;
})();
"""

FAKE_MIC_JS = """
(() => {
  const mic = { context: null, destination: null, clips: {}, playing: null, played: [] };
  const ensure = () => {
    if (!mic.context) {
      mic.context = new AudioContext({ sampleRate: 48000 });
      mic.destination = mic.context.createMediaStreamDestination();
      // Without a source the track delivers nothing between clips, and the agent's VAD then
      // never hears the silence that ends a question: keep a silent one playing.
      const hum = mic.context.createConstantSource();
      hum.offset.value = 0;
      hum.connect(mic.destination);
      hum.start();
    }
    return mic.context;
  };
  navigator.mediaDevices.getUserMedia = async () => {
    await ensure().resume();
    return new MediaStream(mic.destination.stream.getAudioTracks());
  };
  mic.load = (name, b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const pcm = new Int16Array(bytes.buffer);
    const buffer = ensure().createBuffer(1, pcm.length, 48000);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
    mic.clips[name] = buffer;
    return buffer.duration;
  };
  mic.play = (name) => {
    const source = mic.context.createBufferSource();
    source.buffer = mic.clips[name];
    source.connect(mic.destination);
    source.start();
    const entry = { name, ended: false };
    source.onended = () => { entry.ended = true; mic.playing = null; };
    mic.playing = entry;
    mic.played.push(entry);
    return source.buffer.duration;
  };
  window.fakeMic = mic;
})();
"""


def pcm_base64(audio: AudioFrame) -> str:
    """48 kHz mono int16 audio as the base64 that ``fakeMic.load`` takes."""
    return base64.b64encode(audio.to_int16().data[:, 0].tobytes()).decode("ascii")


def decode_stereo(b64: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``stereoRecorder.take()``'s interleaved int16 as (left, right) floats in [-1, 1]."""
    pcm = np.frombuffer(base64.b64decode(b64), np.int16).reshape(-1, 2)
    samples = pcm.astype(np.float32) / 32768
    return samples[:, 0].copy(), samples[:, 1].copy()
