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
  // Per turn, as heard here (see "latency as heard"): also window.parleyTurns.
  turns: [],
  bargeIns: [],            // barge-ins as heard: the user's first sound → the agent's silence
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
window.parleyTurns = state.turns;
window.parleyBargeIns = state.bargeIns;

// A room that needs a token (RoomOptions.auth_token) gives it in this page's URL: every
// request to the agent presents it. camera=1 (RoomOptions.vision) turns the camera on.
const pageQuery = new URLSearchParams(location.search);
const token = pageQuery.get("token");

function withToken(url) {
  return token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url;
}

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
  if (pageQuery.get("camera") === "1") $("camera").checked = true;
  const fromUrl = pageQuery.get("call");
  if (fromUrl) {
    $("call").value = fromUrl;
    return;
  }
  try {
    const response = await fetch(withToken("calls"));
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
  state.localStream = localStream; // what the agent hears, for tests that record it
  state.heard = heard; // the latency tracker's state, for automation
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
    response = await fetch(withToken(`calls/${encodeURIComponent(callId)}/offer`), {
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
  if (body.agent) {
    agentName = body.agent.name || agentName;
    $("agent-name").textContent = `talking to ${agentName}`;
  }
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
  return withToken(
    `calls/${encodeURIComponent(state.callId)}/participants/${state.participantId}/leave`,
  );
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
  Object.assign(heard, freshHeard());
  pendingHeard.length = 0;
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
  audioContext.resume().catch(() => {});
  const context = audioContext;
  const mic = localStream.getAudioTracks().length ? analyserFor(localStream) : null;
  let agent = null;
  const levels = loadLevelWorklet(context);
  if (mic) levels.then(() => tapLevels(context, localStream, "mic"));
  const buffer = new Float32Array(2048);
  const spectrum = new Float32Array(1024);
  timers.push(
    setInterval(() => {
      if (!agent && state.remoteStream) {
        agent = analyserFor(state.remoteStream);
        const remote = state.remoteStream;
        levels.then(() => tapLevels(context, remote, "agent"));
      }
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

// --- latency as heard ------------------------------------------------------------------------
// The page's own audio clock (AudioContext.currentTime) times both tracks: the microphone
// track it sends and the agent's track it plays. A worklet reports every ~10 ms window of
// each with its RMS and the times of its first and last loud samples, so a turn's latency is
// the end of the user's speech → the first sound of the reply, to the sample, including the
// VAD's silence wait, the network and the jitter buffer that the agent's own figures leave out.

const LEVEL_WORKLET = `
class ParleyLevel extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.loud = options.processorOptions.sampleLoud;
    this.sum = 0; this.count = 0; this.start = 0; this.first = -1; this.last = -1;
  }
  process(inputs) {
    const samples = inputs[0] && inputs[0][0];
    if (this.count === 0) { this.start = currentTime; this.first = -1; this.last = -1; }
    if (samples) {
      for (let i = 0; i < samples.length; i++) {
        const x = samples[i];
        this.sum += x * x;
        if (x > this.loud || x < -this.loud) {
          const t = currentTime + i / sampleRate;
          if (this.first < 0) this.first = t;
          this.last = t;
        }
      }
    }
    this.count += 128;
    if (this.count >= 480) {
      this.port.postMessage([this.start, currentTime + 128 / sampleRate,
        Math.sqrt(this.sum / this.count), this.first, this.last]);
      this.sum = 0; this.count = 0;
    }
    return true;
  }
}
registerProcessor("parley-level", ParleyLevel);
`;

const HEARD = {
  windowLoud: 0.01,   // RMS of a ~10 ms window that counts as sound (about -40 dBFS)
  sampleLoud: 0.02,   // within a loud window: the first/last sample this loud marks the edge
  minSpeech: 0.1,     // seconds of loud windows before mic sound counts as speech
  userGap: 0.3,       // a quieter stretch than this inside the user's speech is one utterance
  agentGap: 0.25,     // the agent's audio silent this long, then sound again: a new reply
  agentSilence: 0.5,  // silent this long: the agent has stopped (its stop is the last sound)
  bargeGiveUp: 5,     // the agent still talks this long after the user started: no barge-in
};

const heard = freshHeard();

function freshHeard() {
  return {
    mic: { lastLoud: -Infinity, start: null, loudFor: 0 },
    agent: { sounding: false, lastLoud: -Infinity, start: null },
    pendingUser: null, // the user's latest utterance {start, end}, not yet answered
    barge: null, // the user's first sound while the agent was sounding {userStart}
  };
}

function loadLevelWorklet(context) {
  const url = URL.createObjectURL(new Blob([LEVEL_WORKLET], { type: "text/javascript" }));
  return context.audioWorklet.addModule(url).catch((error) => {
    state.errors.push(`audio worklet: ${error}`);
    throw error;
  });
}

function tapLevels(context, stream, which) {
  if (context !== audioContext) return; // hung up meanwhile
  const node = new AudioWorkletNode(context, "parley-level", {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    channelCount: 1,
    channelCountMode: "explicit",
    processorOptions: { sampleLoud: HEARD.sampleLoud },
  });
  const mute = context.createGain();
  mute.gain.value = 0; // pulled by the destination, heard by nobody
  context.createMediaStreamSource(stream).connect(node);
  node.connect(mute).connect(context.destination);
  node.port.onmessage = (event) =>
    which === "mic" ? micWindow(...event.data) : agentWindow(...event.data);
}

function micWindow(start, end, rms, first, last) {
  const mic = heard.mic;
  if (rms < HEARD.windowLoud) return;
  if (start - mic.lastLoud > HEARD.userGap) {
    mic.start = first >= 0 ? first : start;
    mic.loudFor = 0;
  }
  mic.loudFor += end - start;
  mic.lastLoud = last >= 0 ? last : end;
  if (mic.loudFor < HEARD.minSpeech) return;
  heard.pendingUser = { start: mic.start, end: mic.lastLoud };
  const agent = heard.agent;
  const overAgent = agent.sounding && mic.start > agent.start;
  if (!heard.barge && overAgent && mic.start - agent.lastLoud < HEARD.agentGap) {
    heard.barge = { userStart: mic.start };
  }
}

function agentWindow(start, end, rms, first, last) {
  const agent = heard.agent;
  if (rms >= HEARD.windowLoud) {
    const onset = first >= 0 ? first : start;
    if (!agent.sounding || onset - agent.lastLoud > HEARD.agentGap) replyStarted(onset);
    agent.sounding = true;
    agent.lastLoud = last >= 0 ? last : end;
  } else if (agent.sounding && end - agent.lastLoud > HEARD.agentSilence) {
    agent.sounding = false;
    if (heard.barge) {
      bargeInHeard(heard.barge.userStart, agent.lastLoud);
      heard.barge = null;
    }
  }
  const barge = heard.barge;
  if (barge && agent.sounding && end - barge.userStart > HEARD.bargeGiveUp) {
    bargeInHeard(barge.userStart, null); // the agent talked on: it was not cut off
    heard.barge = null;
  }
}

function replyStarted(onset) {
  const user = heard.pendingUser;
  heard.agent.start = onset;
  // A reply answers speech that ended before it began; the user still talking is overlap.
  if (!user || heard.mic.lastLoud > onset - 0.02) return;
  heard.pendingUser = null;
  const turn = {
    n: state.turns.length + 1, // this visitor's turn number
    userStart: user.start, // AudioContext seconds
    userEnd: user.end,
    agentStart: onset,
    heardMs: Math.round((onset - user.end) * 1000),
    server: null, // the agent's turn_metrics, when they arrive
  };
  state.turns.push(turn);
  pendingHeard.push(turn);
}

function bargeInHeard(userStart, agentStop) {
  state.bargeIns.push({
    userStart,
    agentStop,
    ms: agentStop === null ? null : Math.max(0, Math.round((agentStop - userStart) * 1000)),
  });
}

// --- agent events ----------------------------------------------------------------------------

function handle(message) {
  switch (message.type) {
    case "transcript":
      if (message.role === "agent") showAgentText(message);
      else showUserText(message);
      break;
    case "state":
      setAgentState(String(message.state || "unknown"));
      agentStateChanged(state.agentState);
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

// The conversation: one item per utterance, in the order it was spoken. The agent's reply
// gets its place when the agent starts on it, so a user who talks over it comes after it.
const userItems = new Map(); // speaker id → that speaker's utterance still being transcribed
let agentItem = null; // the agent's reply in progress: {li, words, shown, timer, sounding}
let agentName = "Agent";

function newItem(role, who) {
  const hint = $("transcript").querySelector(".hint");
  if (hint) hint.remove();
  const li = document.createElement("li");
  li.className = role;
  const label = document.createElement("span");
  label.className = "who";
  label.textContent = who;
  li.append(label);
  $("transcript").appendChild(li);
  return li;
}

function setText(li, text) {
  let span = li.querySelector(".text");
  if (!span) {
    span = document.createElement("span");
    span.className = "text";
    li.querySelector(".who").after(span);
  }
  span.textContent = text;
}

function scrollConversation() {
  $("transcript").scrollTop = $("transcript").scrollHeight;
}

function speakerOf(message) {
  // The agent names the speaker it heard last; with no name, it can only be this page.
  if (!message.participant_id || message.participant_id === state.participantId) {
    return { id: "me", label: "You" };
  }
  return { id: message.participant_id, label: message.name || "Someone" };
}

function showUserText(message, who = speakerOf(message)) {
  const final = message.final !== false;
  let li = userItems.get(who.id);
  if (!li) {
    li = newItem(who.id === "me" ? "user" : "user other", who.label);
    // A reply not begun yet answers this: it moves below it.
    if (agentItem && !agentItem.sounding && !agentItem.words.length) {
      $("transcript").appendChild(agentItem.li);
    }
  }
  setText(li, message.text || "");
  li.classList.toggle("partial", !final);
  if (final) userItems.delete(who.id);
  else userItems.set(who.id, li);
  scrollConversation();
}

function beginReply() {
  if (!agentItem) {
    const li = newItem("agent pending", agentName);
    agentItem = { li, words: [], shown: 0, timer: null, sounding: false, revealAt: 0 };
  }
  return agentItem;
}

function agentStateChanged(value) {
  if (value === "thinking") beginReply();
  if (value === "speaking") beginReply().sounding = true;
  if (value === "listening" && agentItem && !agentItem.words.length) {
    agentItem.li.remove(); // nothing was said
    clearTimeout(agentItem.timer);
    agentItem = null;
  }
}

// Agent text comes with `playout_ms`: how long until the audio of its last word has played.
// Words not shown yet are revealed one by one, spread over that time, so the text follows
// the voice. A final message replaces the text with what was heard.
function showAgentText(message) {
  const reply = beginReply();
  const text = String(message.text || "");
  if (message.final === false) {
    const words = text.split(/\s+/).filter(Boolean);
    const known = reply.words.join(" ");
    reply.words = text.startsWith(known) ? words : reply.words.concat(words);
    const now = performance.now();
    const until = now + Math.max(0, Number(message.playout_ms) || 0);
    reply.revealAt = Math.max(reply.revealAt, now);
    scheduleReveal(reply, until);
    return;
  }
  clearTimeout(reply.timer);
  reply.li.classList.remove("pending");
  setText(reply.li, text);
  if (message.interrupted) markInterrupted(reply.li);
  agentItem = null;
  lastAgentLi = reply.li;
  scrollConversation();
}

function scheduleReveal(reply, until) {
  clearTimeout(reply.timer);
  const step = () => {
    if (reply.shown >= reply.words.length) return;
    reply.shown += 1;
    reply.li.classList.remove("pending");
    setText(reply.li, reply.words.slice(0, reply.shown).join(" "));
    scrollConversation();
    const left = reply.words.length - reply.shown;
    if (left > 0) reply.timer = setTimeout(step, Math.max(0, (until - performance.now()) / left));
  };
  const left = reply.words.length - reply.shown;
  const wait = left > 0 ? Math.max(0, (until - performance.now()) / left) : 0;
  reply.timer = setTimeout(step, Math.min(wait, Math.max(0, reply.revealAt - performance.now())));
}

let lastAgentLi = null;

function markInterrupted(li) {
  if (!li || li.classList.contains("interrupted")) return;
  li.classList.add("interrupted");
  const mark = document.createElement("span");
  mark.className = "mark";
  mark.textContent = "interrupted";
  mark.title = "You spoke over this reply: the agent stopped; the text is what was played.";
  li.append(mark);
}

// --- turn latency ----------------------------------------------------------------------------

const STAGES = [
  // [class, offset from the VAD's end of speech (ms), name]
  ["stt", (m) => m.transcript_ms, "speech to text"],
  ["turn", (m) => sub(m.first_token_ms, m.llm_ttft_ms), "end of turn"],
  ["llm", (m) => m.first_token_ms, "first token"],
  ["tts", (m) => m.first_audio_ms, "first audio"],
  ["send", (m) => m.first_audio_sent_ms, "audio sent"],
];
const pendingHeard = []; // turns heard here whose turn_metrics have not arrived yet
let rows = 0;

function sub(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) ? a - b : undefined;
}

function showTurn(metrics) {
  // The reply these figures belong to was heard before they came (they come at its end).
  const turn = pendingHeard.pop();
  pendingHeard.length = 0;
  if (turn) turn.server = metrics;
  if (metrics.interrupted) markInterrupted(lastAgentLi);
  const marks = STAGES.map(([cls, at, name]) => [cls, at(metrics), name]).filter(([, at]) =>
    Number.isFinite(at),
  );
  if (!marks.length && !turn) return;
  const heardMs = turn ? turn.heardMs : undefined;
  const total = Math.max(heardMs ?? 0, ...marks.map(([, at]) => at));
  const scale = Math.max(1500, total);
  rows += 1;
  const hint = $("turns").querySelector(".hint");
  if (hint) hint.remove();
  const row = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = `turn ${rows}`;
  label.title = "this page's turn number";
  const bar = document.createElement("div");
  bar.className = "bar";
  let previous = 0;
  for (const [cls, at, name] of marks) {
    const segment = document.createElement("div");
    segment.className = cls;
    const span = Math.max(0, at - previous);
    segment.style.width = `${(100 * span) / scale}%`;
    segment.title = `${name}: ${Math.round(at)} ms (+${Math.round(span)} ms)`;
    bar.appendChild(segment);
    previous = Math.max(previous, at);
  }
  if (heardMs !== undefined && heardMs > previous) {
    // Not a `div`: what the agent measured and what only the page knows stay apart.
    const rest = document.createElement("i");
    rest.className = "rest";
    rest.style.width = `${(100 * (heardMs - previous)) / scale}%`;
    rest.title = `VAD silence wait, network, jitter buffer: +${Math.round(heardMs - previous)} ms`;
    bar.appendChild(rest);
  }
  const figure = document.createElement("span");
  figure.className = "figure";
  figure.textContent = heardMs !== undefined ? `${heardMs} ms` : `${Math.round(total)} ms sent`;
  figure.title =
    heardMs !== undefined
      ? "as heard: the end of your speech → the agent's first sound, on this page's clock"
      : "not heard here: the agent's end of speech → first audio sent";
  if (metrics.interrupted) row.classList.add("interrupted");
  row.append(label, bar, figure);
  $("turns").prepend(row);
  summarize();
}

function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : undefined;
}

// Each stage's own duration, median over the turns heard here: where the time goes.
const MEDIANS = [
  ["stt", "STT", (m) => m.transcript_ms],
  ["turn", "turn end", (m) => m.endpointing_ms],
  ["llm", "LLM", (m) => m.llm_ttft_ms],
  ["tts", "TTS", (m) => m.tts_ttfa_ms],
  ["send", "sent", (m) => sub(m.first_audio_sent_ms, m.first_audio_ms)],
  ["rest", "VAD+net", (m, t) => sub(t.heardMs, m.first_audio_sent_ms)],
  ["heard", "heard", (m, t) => t.heardMs],
];

function summarize() {
  const values = state.turns.map((t) => t.heardMs).sort((a, b) => a - b);
  if (!values.length) return;
  $("latency-summary").textContent =
    `As heard over ${values.length} turn${values.length > 1 ? "s" : ""}: ` +
    `median ${median(values)} ms, max ${values[values.length - 1]} ms. Medians per stage (ms):`;
  const measured = state.turns.filter((t) => t.server);
  const cells = MEDIANS.map(([cls, name, of]) => {
    const value = median(measured.map((t) => of(t.server, t)));
    const cell = document.createElement("div");
    cell.className = cls;
    const term = document.createElement("dt");
    term.textContent = name;
    const figure = document.createElement("dd");
    figure.textContent = value === undefined ? "–" : `${Math.max(0, Math.round(value))}`;
    cell.append(term, figure);
    return cell;
  });
  $("medians").replaceChildren(...cells);
}

// --- typed messages --------------------------------------------------------------------------

function say(text) {
  text = String(text).trim();
  if (!text || !send({ type: "text", text })) return false;
  showUserText({ text, final: true }, { id: "typed", label: "You" });
  return true;
}

$("say").addEventListener("submit", (event) => {
  event.preventDefault();
  if (say($("text").value)) $("text").value = "";
});
// A phone turned or a window resized: keep the latest words in view.
window.addEventListener("resize", scrollConversation);
$("join").addEventListener("click", () => join());
$("leave").addEventListener("click", () => leave());
pickCall();
