// Parley demo page: one RTCPeerConnection with the agent process, no build step, no CDN.
// Data-channel schema: see the parley-webrtc README. window.parley exposes state for tests.
"use strict";

const $ = (id) => document.getElementById(id);
const METER_MS = 100;
const PING_MS = 2000;

const state = {
  callId: null,
  participantId: null,
  connection: "idle",      // RTCPeerConnection.connectionState, or idle / failed / left
  agentState: "offline",
  messages: [],            // every data-channel message received, in order
  micRms: 0,
  remoteRms: 0,
  remoteRmsPeak: 0,
  remoteRmsHistory: [],    // last 100 readings of the agent's audio level (one per 100 ms)
  remotePeakHz: 0,         // strongest frequency of the agent's audio at the last loud reading
  errors: [],
  // getUserMedia audio constraints. Echo cancellation keeps the agent from hearing itself
  // through speakers; tests that play a file as the microphone turn it off (as headphones).
  micConstraints: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  pc: null,
  channel: null,
  join,
  leave,
  say,
};
window.parley = state;

let localStream = null;
let audioContext = null;
let timers = [];

function status(text, isError = false) {
  $("status").textContent = text;
  if (isError) state.errors.push(text);
}

function setAgentState(value) {
  state.agentState = value;
  const badge = $("agent-state");
  badge.dataset.state = value;
  badge.textContent = value;
}

function setJoined(joined) {
  $("join").disabled = joined;
  $("leave").disabled = !joined;
  $("text").disabled = !joined;
  $("send").disabled = !joined;
  $("call").disabled = joined;
}

// --- joining ---------------------------------------------------------------------------------

async function pickCall() {
  const fromUrl = new URLSearchParams(location.search).get("call");
  if (fromUrl) {
    $("call").value = fromUrl;
    return;
  }
  try {
    const response = await fetch("calls");
    const { calls } = await response.json();
    if (calls.length >= 1) $("call").value = calls[0].call_id;
    if (calls.length === 0) status("No agent is on a call yet; start one, then join.");
  } catch (error) {
    status(`Could not list calls: ${error}`, true);
  }
}

function iceGatheringComplete(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs); // send what we have; the agent also gathers its own
  });
}

async function join() {
  const callId = $("call").value.trim();
  if (!callId) {
    status("Enter a call id first.", true);
    return false;
  }
  setJoined(true);
  status("Asking for the microphone…");
  try {
    localStream = await navigator.mediaDevices.getUserMedia({
      audio: { ...state.micConstraints },
      video: $("camera").checked ? { width: 640, height: 480 } : false,
    });
  } catch (error) {
    status(`Microphone unavailable: ${error.message}`, true);
    setJoined(false);
    return false;
  }
  if ($("camera").checked) {
    $("preview").srcObject = localStream;
    $("preview").hidden = false;
  }

  const pc = new RTCPeerConnection({ iceServers: [] });
  state.pc = pc;
  for (const track of localStream.getTracks()) pc.addTrack(track, localStream);
  openChannel(pc.createDataChannel("parley", { ordered: true }));
  pc.ontrack = (event) => {
    if (event.track.kind === "audio") playAgent(event.streams[0] || new MediaStream([event.track]));
  };
  pc.onconnectionstatechange = () => {
    state.connection = pc.connectionState;
    if (pc.connectionState === "connected") status(`Connected to call ${callId}.`);
    if (pc.connectionState === "failed") {
      status("The connection to the agent failed.", true);
      hangUp("failed");
    }
  };

  status("Connecting…");
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringComplete(pc);
  let response, body;
  try {
    response = await fetch(`calls/${encodeURIComponent(callId)}/offer`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        type: "offer",
        sdp: pc.localDescription.sdp,
        user: { name: $("name").value.trim() || "Guest" },
      }),
      // Another node hosts the call (it started after this page loaded): a cross-origin
      // redirect would fail, so reload this page instead, which the server redirects there.
      redirect: "manual",
    });
    if (response.type === "opaqueredirect") {
      hangUp("moved");
      status("This call is hosted by another server; taking you there. Join again when it loads.");
      location.replace(location.href);
      return false;
    }
    body = await response.json();
  } catch (error) {
    status(`Could not reach the agent: ${error}`, true);
    hangUp("failed");
    return false;
  }
  if (!response.ok) {
    status(`Join refused (${response.status}): ${body.detail}`, true);
    hangUp("failed");
    return false;
  }
  state.callId = callId;
  state.participantId = body.participant_id;
  if (body.agent) $("agent-name").textContent = `talking to ${body.agent.name}`;
  await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
  startMeters();
  setAgentState("listening");
  return true;
}

function openChannel(channel) {
  state.channel = channel;
  channel.onopen = () => {
    timers.push(setInterval(() => send({ type: "ping", t: Date.now() }), PING_MS));
  };
  channel.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    state.messages.push(message);
    handle(message);
  };
}

function send(message) {
  if (state.channel && state.channel.readyState === "open") {
    state.channel.send(JSON.stringify(message));
    return true;
  }
  return false;
}

// --- leaving ---------------------------------------------------------------------------------

function leaveUrl() {
  return `calls/${encodeURIComponent(state.callId)}/participants/${state.participantId}/leave`;
}

async function leave() {
  if (state.participantId) {
    try {
      await fetch(leaveUrl(), { method: "POST", keepalive: true });
    } catch (error) {
      state.errors.push(`leave: ${error}`);
    }
  }
  hangUp("left");
  status("You left the call.");
}

function hangUp(reason) {
  for (const timer of timers) clearInterval(timer);
  timers = [];
  if (state.pc) state.pc.close();
  if (localStream) for (const track of localStream.getTracks()) track.stop();
  if (audioContext) audioContext.close();
  state.pc = null;
  state.channel = null;
  localStream = null;
  audioContext = null;
  state.participantId = null;
  state.connection = reason;
  state.micRms = 0;
  state.remoteRms = 0;
  $("mic-level").style.width = "0";
  $("agent-level").style.width = "0";
  $("preview").hidden = true;
  setAgentState("offline");
  setJoined(false);
}

window.addEventListener("pagehide", () => {
  if (state.participantId) navigator.sendBeacon(leaveUrl());
});

// --- audio -----------------------------------------------------------------------------------

function playAgent(stream) {
  // Chromium feeds WebAudio from a remote stream only if a media element plays it too.
  $("agent-audio").srcObject = stream;
  state.remoteStream = stream;
}

function rmsOf(analyser, buffer) {
  analyser.getFloatTimeDomainData(buffer);
  let sum = 0;
  for (let i = 0; i < buffer.length; i++) sum += buffer[i] * buffer[i];
  return Math.sqrt(sum / buffer.length);
}

function peakHz(analyser, spectrum) {
  analyser.getFloatFrequencyData(spectrum);
  let best = 1;
  for (let i = 2; i < spectrum.length; i++) if (spectrum[i] > spectrum[best]) best = i;
  return (best * audioContext.sampleRate) / analyser.fftSize;
}

function analyserFor(stream) {
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 2048;
  audioContext.createMediaStreamSource(stream).connect(analyser);
  return analyser;
}

function startMeters() {
  audioContext = new AudioContext();
  const mic = localStream.getAudioTracks().length ? analyserFor(localStream) : null;
  let agent = null;
  const buffer = new Float32Array(2048);
  const spectrum = new Float32Array(1024);
  timers.push(
    setInterval(() => {
      if (!agent && state.remoteStream) agent = analyserFor(state.remoteStream);
      if (mic) state.micRms = rmsOf(mic, buffer);
      if (agent) {
        state.remoteRms = rmsOf(agent, buffer);
        state.remoteRmsPeak = Math.max(state.remoteRmsPeak, state.remoteRms);
        if (state.remoteRms > 0.02) state.remotePeakHz = peakHz(agent, spectrum);
        state.remoteRmsHistory.push(state.remoteRms);
        if (state.remoteRmsHistory.length > 100) state.remoteRmsHistory.shift();
      }
      $("mic-level").style.width = `${Math.min(100, state.micRms * 300)}%`;
      $("agent-level").style.width = `${Math.min(100, state.remoteRms * 300)}%`;
    }, METER_MS),
  );
}

// --- agent events ----------------------------------------------------------------------------

function handle(message) {
  switch (message.type) {
    case "transcript":
      showTranscript(message.role === "agent" ? "agent" : "user", message.text || "", message.final !== false);
      break;
    case "state":
      setAgentState(String(message.state || "unknown"));
      break;
    case "turn_metrics":
      showTurn(message);
      break;
    case "error":
      status(`Agent error: ${message.message}`, true);
      break;
    case "bye":
      status(`The agent ended the call: ${message.reason || ""}`);
      hangUp("ended");
      break;
    default:
      break; // unknown types are kept in state.messages only
  }
}

const partial = { user: null, agent: null };

function showTranscript(role, text, final) {
  let item = partial[role];
  if (!item) {
    item = document.createElement("li");
    item.className = role;
    item.innerHTML = `<span class="who"></span><span class="text"></span>`;
    item.querySelector(".who").textContent = role === "agent" ? "Agent" : "You";
    $("transcript").appendChild(item);
  }
  item.querySelector(".text").textContent = text;
  item.classList.toggle("partial", !final);
  partial[role] = final ? null : item;
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

const STAGES = [
  ["stt", "transcript_ms", "transcript"],
  ["turn", "turn_end_ms", "end of turn"],
  ["llm", "first_token_ms", "first token"],
  ["tts", "first_audio_ms", "first audio"],
  ["send", "first_audio_sent_ms", "audio sent"],
];

function showTurn(metrics) {
  // When the engine decided the user was done: the endpointing wait is policy, not the LLM.
  if (Number.isFinite(metrics.first_token_ms) && Number.isFinite(metrics.llm_ttft_ms)) {
    metrics = { ...metrics, turn_end_ms: metrics.first_token_ms - metrics.llm_ttft_ms };
  }
  const marks = STAGES.filter(([, key]) => Number.isFinite(metrics[key]));
  if (!marks.length) return;
  const total = Math.max(...marks.map(([, key]) => metrics[key]));
  const scale = Math.max(1500, total);
  const row = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = `turn ${metrics.turn_id ?? $("turns").children.length + 1}`;
  const bar = document.createElement("div");
  bar.className = "bar";
  let previous = 0;
  for (const [cls, key, name] of marks) {
    const segment = document.createElement("div");
    segment.className = cls;
    const span = Math.max(0, metrics[key] - previous);
    segment.style.width = `${(100 * span) / scale}%`;
    segment.title = `${name}: ${Math.round(metrics[key])} ms (+${Math.round(span)} ms)`;
    bar.appendChild(segment);
    previous = Math.max(previous, metrics[key]);
  }
  const sum = document.createElement("span");
  sum.textContent = `${Math.round(total)} ms`;
  row.append(label, bar, sum);
  $("turns").prepend(row);
}

// --- typed messages --------------------------------------------------------------------------

function say(text) {
  text = String(text).trim();
  if (!text || !send({ type: "text", text })) return false;
  showTranscript("user", text, true);
  return true;
}

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  if (say($("text").value)) $("text").value = "";
});
$("join").addEventListener("click", () => join());
$("leave").addEventListener("click", () => leave());
pickCall();
