"""Phone calls under load: N concurrent fake Twilio calls against one server process.

Processes on loopback:
- the server: the Parley server (Runner's app, launcher, Twilio routes) under uvicorn, with
  instant fake parts (parley.testing, at the phone's 8 kHz; ``--wideband``: 16/24 kHz) and an
  agent that speaks a 2 s reply every 3 s through the real engine (TTS → playout → µ-law →
  paced 20 ms media messages with marks), and answers "OK." to each caller utterance;
- the callers: processes of 50 `BenchCall`s each, speaking the Media Streams protocol: the
  caller's audio in real time (µ-law media every 20 ms, a 1 s utterance every 4 s: decode,
  VAD and STT run on the server), marks echoed once Twilio would have played the audio,
  ``clear`` honoured; cheap enough that they never hold the server back;
- this driver: measures CPU with psutil and the server's run-queue wait over a fixed window.

Printed per N: server CPU per call (% of one core, idle baseline in the same run
subtracted); p50/p99/max outbound frame lateness as the server's pacer measured it; the
callers' CPU and p99 arrival lateness; and ``starved``, the share of the window the server
was runnable but waited for a CPU other processes held (Linux schedstat): lateness with a
high ``starved`` is the machine's, not the server's. The bar: 100 calls with p99 ≤ 20 ms.

Run: ``hatch run python bench/phone_sessions.py [--sizes 10,50,100] [--window 10] [--quick]``

The server freezes its startup heap as `parley serve` does (`parley_server.heap`);
``--no-gc-freeze`` measures without. To measure settings proposed, not today's (the header line
names the ones in use): ``--ws`` picks uvicorn's WebSocket implementation (``high-water``:
sans-I/O that pauses reads only when the app is behind), ``--gc-young N`` sets the GC's
young-generation threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped]

TOKEN = "bench-token"
REPLY = "This is the agent speaking on the phone, a reply of about two seconds."


# --- server ----------------------------------------------------------------------------------


def run_server(
    port_file: Path, wideband: bool, ws: str = "auto", gc_freeze: bool = True, gc_young: int = 0
) -> None:
    os.environ["TWILIO_AUTH_TOKEN"] = TOKEN
    import uvicorn
    from parley import Agent, AgentLauncher
    from parley.session import SessionClosed
    from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD
    from parley_server import Runner
    from parley_twilio.edge import TwilioEdge
    from parley_twilio.line import default_lines

    # Phone rate: the fake STT, VAD and TTS work at 8 kHz, as phone-native providers do
    # (Deepgram, ElevenLabs' ulaw_8000…); --wideband gives them 16/24 kHz: the engine then
    # resamples every frame both ways.
    stt_rate, tts_rate = (16000, 24000) if wideband else (8000, 8000)

    async def create_agent(**params: Any) -> Agent:
        return Agent(
            "bench",
            edge=TwilioEdge(),
            llm=FakeLLM(["OK."]),
            tts=FakeTTS(seconds_per_char=2.0 / len(REPLY), sample_rate=tts_rate),
            # a turn per utterance of the caller ("utterance N"), answered "OK."
            stt=FakeSTT([], sample_rate=stt_rate),
            vad=FakeVAD(sample_rate=stt_rate),
        )

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        async with agent.join(await agent.create_call(call_type, call_id)) as session:
            while not session.closed:
                try:
                    await session.say(REPLY, add_to_history=False)
                except SessionClosed:
                    return  # the caller hung up
                await asyncio.sleep(1.0)

    launcher = AgentLauncher(
        create_agent, join_call, warm_up=False, drain_timeout=0.5, agent_idle_timeout=None
    )
    app = Runner(launcher).fast_api
    marks: dict[int, int] = {}

    profile_to = os.environ.get("PHONE_BENCH_PROFILE")  # a path: cProfile each window there
    profiler = None

    @app.post("/bench/reset")
    async def reset() -> dict[str, Any]:
        nonlocal profiler
        if profile_to:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        marks.clear()
        for line in default_lines:
            marks[id(line)] = line.output.frames_sent
        return {"lines": len(marks)}

    @app.get("/bench/stats")
    async def stats() -> dict[str, Any]:
        if profiler is not None and profile_to:
            profiler.disable()
            profiler.dump_stats(profile_to)
        late = [line.output.lateness(marks.get(id(line), 0)) for line in default_lines]
        values = np.concatenate(late) if late else np.zeros(1)
        values = values if values.size else np.zeros(1)
        return {
            "lines": len(late),
            "sessions": launcher.stats().running,
            "frames_out": int(values.size),
            "p50_ms": float(np.percentile(values, 50) * 1000),
            "p99_ms": float(np.percentile(values, 99) * 1000),
            "max_ms": float(values.max() * 1000),
            "resyncs": sum(line.output.resyncs for line in default_lines),
        }

    if gc_young:  # measuring a proposal: the young generation's threshold
        gc.set_threshold(gc_young, *gc.get_threshold()[1:])
    if gc_freeze:  # as a process the Runner owns does after startup
        from parley_server.heap import freeze_startup_heap

        freeze_startup_heap()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port_file.write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        ws_max_size=2**20,
        ws=high_water_protocol() if ws == "high-water" else ws,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C on the driver reaches us too
        asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def high_water_protocol() -> type[Any]:
    """A proposal measured, not today's server: uvicorn's sans-I/O WebSocket protocol pauses
    reading the socket after every message it queues for the app and resumes once the app has
    read it (two epoll_ctl calls and a new reader handle per message); this one pauses only
    when the app is ``HIGH_WATER`` messages behind."""
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    high_water = 16

    class HighWaterProtocol(WebSocketsSansIOProtocol):
        def send_receive_event_to_app(self) -> None:
            if self.curr_msg_data_type != "text" or self.close_sent:
                super().send_receive_event_to_app()
                return
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            self.frames = []
            try:
                text = data.decode()
            except UnicodeDecodeError:
                self.frames = [data]
                super().send_receive_event_to_app()  # uvicorn's handling of bad UTF-8
                return
            self.queue.put_nowait({"type": "websocket.receive", "text": text})
            if not self.read_paused and self.queue.qsize() >= high_water:
                self.read_paused = True
                self.transport.pause_reading()

    return HighWaterProtocol


# --- callers ---------------------------------------------------------------------------------


class BenchCall:
    """Twilio's side of one call, as cheap as the protocol allows: media messages are built
    from pre-encoded payloads, the agent's media is counted, not parsed, and Twilio's playback
    is arithmetic (when the buffered audio ends) instead of a sleep per frame. What the
    caller sees is recorded: how late each agent frame arrived against a 20 ms grid that
    starts with its burst."""

    def __init__(self, socket: Any, stream_sid: str) -> None:
        self.socket = socket
        self.stream_sid = stream_sid
        self.media_count = 0
        self.clears = 0
        self.play_end = 0.0  # loop time Twilio's buffered audio has played to
        self.marks: deque[tuple[float, str]] = deque()  # (due, name): echo when played
        self.burst_start = 0.0
        self.burst_frames = 0
        self.arrival_late: list[float] = []
        self.sent = 0

    def media(self, payload: str) -> str:
        self.sent += 1
        return (
            f'{{"event":"media","sequenceNumber":"{self.sent + 2}","media":{{"track":"inbound",'
            f'"chunk":"{self.sent}","timestamp":"{self.sent * 20}","payload":"{payload}"}},'
            f'"streamSid":"{self.stream_sid}"}}'
        )

    def received(self, text: str, now: float) -> None:
        if text.startswith('{"event":"media"'):
            self.media_count += 1
            if now - self.play_end > RESYNC or self.burst_frames == 0:
                self.burst_start, self.burst_frames = now, 0  # a new burst: a new grid
            late = now - (self.burst_start + self.burst_frames * FRAME)
            self.burst_frames += 1
            if late < -FRAME:  # early by a frame or more: the grid moved, start it here
                self.burst_start, self.burst_frames, late = now, 1, 0.0
            self.arrival_late.append(max(0.0, late))
            self.play_end = max(self.play_end, now) + FRAME
            return
        message = json.loads(text)
        if message["event"] == "mark":
            self.marks.append((max(self.play_end, now), message["mark"]["name"]))
        elif message["event"] == "clear":  # Twilio drops its buffer, echoes pending marks
            self.clears += 1
            self.play_end = now
            self.marks = deque((now, name) for _, name in self.marks)
            self.burst_frames = 0

    def due_marks(self, now: float) -> list[str]:
        names = []
        while self.marks and self.marks[0][0] <= now:
            names.append(self.marks.popleft()[1])
        return names

    def mark(self, name: str) -> str:
        return json.dumps(
            {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}},
            separators=(",", ":"),
        )


FRAME = 0.02
RESYNC = 0.2  # a gap this long after the buffered audio ended starts a new burst
SLOTS = 10  # callers send in 10 phases per 20 ms, as independent phones would


def run_callers(url: str, n: int, tag: str) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_callers(url, n, tag))


async def _callers(url: str, n: int, tag: str) -> None:
    import base64

    import websockets
    from parley_twilio.g711 import FRAME_BYTES, ulaw_encode
    from parley_twilio.signature import SIGNATURE_HEADER, compute_signature

    t = np.arange(round(1.0 * 8000)) / 8000
    voiced = (np.sin(2 * np.pi * 150 * t) * 6000).astype(np.int16)
    clip = ulaw_encode(np.concatenate([voiced, np.zeros(3 * 8000, np.int16)]))
    payloads = [
        base64.b64encode(clip[i : i + FRAME_BYTES]).decode()
        for i in range(0, len(clip), FRAME_BYTES)
    ]
    loop = asyncio.get_running_loop()
    headers = {SIGNATURE_HEADER: compute_signature(TOKEN, url)}
    calls: list[BenchCall] = []
    for i in range(n):
        # No permessage-deflate, as Twilio's streams: compressing base64 audio is wasted CPU.
        socket = await websockets.connect(
            url, additional_headers=headers, max_size=2**20, compression=None
        )
        call = BenchCall(socket, f"MZ{tag}{i:05d}")
        await socket.send(json.dumps({"event": "connected", "protocol": "Call"}))
        start = {
            "streamSid": call.stream_sid,
            "callSid": f"CA{tag}{i:05d}",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"parley_call_id": f"{tag}-{i}"},
        }
        await socket.send(json.dumps({"event": "start", "start": start}))
        calls.append(call)

    async def read(call: BenchCall) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for text in call.socket:
                call.received(text, loop.time())

    readers = [asyncio.ensure_future(read(c)) for c in calls]
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def measure_from_now() -> None:
        for call in calls:
            call.arrival_late.clear()

    loop.add_signal_handler(signal.SIGUSR1, measure_from_now)

    async def send() -> None:
        """One task sends for every call: slot k of each 20 ms sends the calls i ≡ k."""
        began = loop.time()
        tick = 0
        while not stop.is_set():
            delay = began + tick * FRAME / SLOTS - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            slot = tick % SLOTS
            for call in calls[slot::SLOTS]:
                for name in call.due_marks(now):
                    await call.socket.send(call.mark(name))
                await call.socket.send(call.media(payloads[call.sent % len(payloads)]))
            tick += 1

    print("READY", flush=True)
    sender = asyncio.ensure_future(send())
    await stop.wait()
    with contextlib.suppress(websockets.ConnectionClosed):
        await sender
    late = np.array([x for c in calls for x in c.arrival_late] or [0.0])
    for call in calls:
        with contextlib.suppress(websockets.ConnectionClosed):
            await call.socket.send(json.dumps({"event": "stop", "streamSid": call.stream_sid}))
        await call.socket.close()
    await asyncio.gather(*readers, return_exceptions=True)
    report = {
        "received": sum(c.media_count for c in calls),
        "clears": sum(c.clears for c in calls),
        "p99_arrival_ms": float(np.percentile(late, 99) * 1000),
    }
    print(json.dumps(report), flush=True)


# --- driver ----------------------------------------------------------------------------------


def cpu_percent(processes: list[psutil.Process], window: float) -> list[float]:
    """Each process's CPU (% of one core) over the next ``window`` seconds."""
    before = [sum(p.cpu_times()[:2]) for p in processes]
    began = time.monotonic()
    time.sleep(window)
    spent = time.monotonic() - began
    return [
        100 * (sum(p.cpu_times()[:2]) - b) / spent for p, b in zip(processes, before, strict=True)
    ]


def run_queue_seconds(pid: int) -> float:
    """Seconds the process's threads have waited, runnable, for a CPU (Linux schedstat): how
    much of its lateness other processes on the machine caused. 0 where unavailable."""
    total = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["driver", "server", "callers"], default="driver")
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per N")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--quick", action="store_true", help="N = 10, 50 with 5 s windows")
    parser.add_argument(
        "--calls-per-process", type=int, default=50, help="fake calls per caller process"
    )
    parser.add_argument(
        "--wideband", action="store_true", help="fake parts at 16/24 kHz: resampling both ways"
    )
    parser.add_argument(
        "--ws",
        default="auto",
        choices=["auto", "websockets", "websockets-sansio", "wsproto", "high-water"],
        help="uvicorn's WebSocket implementation in the server (auto: what the server uses;"
        " high-water: websockets-sansio pausing reads only when the app is behind, a proposal)",
    )
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="server: leave the startup heap to the GC's scans (what servers did before)",
    )
    parser.add_argument(
        "--gc-young",
        type=int,
        default=0,
        help="server: the GC's young-generation threshold (0: Python's 700)",
    )
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--tag", default="bench")
    args = parser.parse_args()
    if args.role == "server":
        run_server(args.port_file, args.wideband, args.ws, args.gc_freeze, args.gc_young)
        return
    if args.role == "callers":
        run_callers(args.url, args.n, args.tag)
        return

    import httpx

    sys.path.insert(0, str(Path(__file__).parent))
    from _common import header

    if args.quick:
        args.sizes, args.window, args.warmup = "10,50", 5.0, 3.0
    header("phone_sessions: concurrent Twilio Media Streams calls on one server process")
    me = [sys.executable, __file__]
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        options = ["--ws", args.ws, "--gc-young", str(args.gc_young)]
        options += ["--wideband"] if args.wideband else []
        options += [] if args.gc_freeze else ["--no-gc-freeze"]
        server = subprocess.Popen(
            [*me, "--role", "server", "--port-file", str(port_file), *options]
        )
        try:
            while not port_file.exists() or not port_file.read_text():
                if server.poll() is not None:
                    raise SystemExit("the server exited before it started")
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port_file.read_text()}"
            http = httpx.Client(base_url=base, timeout=60)
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    http.get("/health")
                    break
                time.sleep(0.05)
            server_ps = psutil.Process(server.pid)
            time.sleep(1.0)
            (idle,) = cpu_percent([server_ps], args.window / 2)
            print(
                f"baseline: idle server (N=0) CPU {idle:.2f} % of a core; window {args.window:g} s;"
                f" {args.calls_per_process} fake calls per caller process; server settings:"
                f" ws={args.ws}, gc.freeze={'yes' if args.gc_freeze else 'no'},"
                f" young GC threshold={args.gc_young or 'default'}"
            )
            print(
                "server: CPU of its process, lateness of each 20 ms frame as its pacer sent it;"
                " callers: their CPU, how late frames arrived (20 ms grid per burst);\n"
                "starved: share of the window the server waited, runnable, for a CPU that other"
                " processes held (0 on a machine to itself)"
            )
            print(
                f"{'N':>4} {'server CPU':>11} {'per call':>9} {'p50 late':>9} {'p99 late':>9} "
                f"{'max late':>9} {'frames out':>11} {'callers CPU':>12} {'p99 arrival':>12}"
                f" {'starved':>9}  bar (server p99 <= 20 ms)"
            )
            for n in (int(s) for s in args.sizes.split(",")):
                measure(args, me, base, http, server_ps, idle, n)
        finally:
            # SIGTERM: uvicorn shuts down gracefully and the process exits without a traceback.
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def measure(
    args: argparse.Namespace,
    me: list[str],
    base: str,
    http: Any,
    server_ps: psutil.Process,
    idle: float,
    n: int,
) -> None:
    """One row: N calls from enough caller processes, measured over one window."""
    url = base.replace("http", "ws") + "/twilio/media"
    sizes = [min(args.calls_per_process, n - i) for i in range(0, n, args.calls_per_process)]
    callers = [
        subprocess.Popen(
            [*me, "--role", "callers", "--url", url, "--n", str(k), "--tag", f"n{n}p{j}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for j, k in enumerate(sizes)
    ]
    for process in callers:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "READY":
            raise SystemExit("the callers did not connect")
    deadline = time.monotonic() + 60
    while http.get("/bench/stats").json()["sessions"] < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only some of {n} sessions started")
        time.sleep(0.2)
    time.sleep(args.warmup)
    http.post("/bench/reset")
    for process in callers:
        process.send_signal(signal.SIGUSR1)  # callers: start counting arrivals now
    waited = run_queue_seconds(server_ps.pid)
    began = time.monotonic()
    cpu, *caller_cpu = cpu_percent(
        [server_ps, *map(psutil.Process, (p.pid for p in callers))], args.window
    )
    starved = 100 * (run_queue_seconds(server_ps.pid) - waited) / (time.monotonic() - began)
    stats = http.get("/bench/stats").json()
    reports = []
    for process in callers:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
        reports.append(json.loads(out.strip().splitlines()[-1]))
    while http.get("/bench/stats").json()["sessions"] > 0:
        time.sleep(0.2)
    per_call = (cpu - idle) / n
    arrival = max(r["p99_arrival_ms"] for r in reports)
    bar = "met" if stats["p99_ms"] <= 20 else "NOT met"
    print(
        f"{n:>4} {cpu:>9.1f} % {per_call:>7.2f} % {stats['p50_ms']:>6.2f} ms "
        f"{stats['p99_ms']:>6.2f} ms {stats['max_ms']:>6.2f} ms {stats['frames_out']:>11} "
        f"{sum(caller_cpu):>5.0f} % in {len(callers)} {arrival:>8.2f} ms {starved:>7.1f} %  {bar}",
        flush=True,
    )


if __name__ == "__main__":
    main()
