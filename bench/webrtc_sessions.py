"""WebRTC edge load: N concurrent calls, each one aiortc client peer, against one server process.

Three processes on loopback:
- the server: the `webrtc` edge and its signaling routes under uvicorn, with one agent per
  call that drains `audio_input()` and speaks a reply tone (2 s of every 4 s, written in
  100 ms chunks the way a TTS streams) — so Opus decode, encode and pacing all run;
- the clients (a second process): N aiortc peers, each sending a speech-like clip as Opus
  in a loop, receiving and decoding the agent's audio, and pinging on the data channel;
- this driver: measures the server's and the clients' CPU with psutil over a fixed window.

Printed per N: server CPU per session (% of one core, idle baseline subtracted), p99 and max
outbound frame lateness (how late each 20 ms packet left, measured in the edge's tracks),
server RSS growth per session, and the clients' CPU. The bar: ≤ 3 % of a core per session
with p99 lateness ≤ 20 ms. Baseline in the same run: the idle server (N = 0).

Run: ``hatch run python bench/webrtc_sessions.py [--sizes 1,5,10,20] [--window 10]
[--profile 10] [--loop asyncio|uvloop]`` (``--profile N``: py-spy samples the server during the
N-session window and prints where its busy time goes; sampling itself costs the server CPU
and lateness, so read that row's figures with care).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped]

FRAME = 0.02


# --- server ----------------------------------------------------------------------------------


def run_server(port_file: Path, loop: str, aiortc_decode: bool) -> None:
    import socket

    import uvicorn
    from fastapi import FastAPI
    from parley.edge import User
    from parley.testing.signals import tone_frames
    from parley_webrtc.connection import WebRTCConnection
    from parley_webrtc.edge import WebRTCEdge
    from parley_webrtc.routes import create_router

    if aiortc_decode:  # the baseline: aiortc's threaded decoder and 80 ms jitter prefetch
        from parley_webrtc import inline_decode

        inline_decode.install = lambda receiver, sink: False

    edge = WebRTCEdge(loopback=True, max_participants=1, liveness_timeout=30)
    agents: dict[str, tuple[WebRTCConnection, list[asyncio.Task[None]]]] = {}
    inbound = collections.Counter[str]()
    marks: dict[int, int] = {}
    reply = list(tone_frames(2.0, 48000, frequency=220, frame_duration=0.1))

    async def listen(connection: WebRTCConnection) -> None:
        count = 0
        async for _participant, _frame in connection.audio_input():
            count += 1
            if count % 50 == 0:
                inbound["frames"] += 50

    async def speak(connection: WebRTCConnection) -> None:
        output = connection.audio_output
        while True:
            for frame in reply:
                await output.write(frame)
            await output.wait_for_playout()
            await asyncio.sleep(2.0)

    app = FastAPI()
    app.include_router(create_router(edge.rooms))

    @app.post("/bench/calls")
    async def open_calls(body: dict[str, Any]) -> dict[str, Any]:
        ids = []
        for i in range(int(body["n"])):
            call_id = f"bench-{len(agents)}-{i}"
            connection = await edge.join(
                await edge.create_call("bench", call_id), User("Agent", "agent")
            )
            tasks = [
                asyncio.ensure_future(listen(connection)),
                asyncio.ensure_future(speak(connection)),
            ]
            agents[call_id] = (connection, tasks)
            ids.append(call_id)
        return {"calls": ids}

    @app.post("/bench/reset")
    async def reset() -> dict[str, Any]:
        marks.clear()
        inbound.clear()
        for connection, _ in agents.values():
            for peer in connection.peers.values():
                if peer.audio_track is not None:
                    marks[id(peer.audio_track)] = peer.audio_track.frames_sent
        return {"peers": len(marks)}

    @app.get("/bench/stats")
    async def stats() -> dict[str, Any]:
        lateness, resyncs, connected = [], 0, 0
        for connection, _ in agents.values():
            for peer in connection.peers.values():
                connected += peer.connected
                track = peer.audio_track
                if track is not None:
                    lateness.append(track.lateness(marks.get(id(track), 0)))
                    resyncs += track.resyncs
        late = np.concatenate(lateness) if lateness else np.zeros(1)
        return {
            "connected": connected,
            "frames_out": int(late.size),
            "frames_in": inbound["frames"],
            "p50_ms": float(np.percentile(late, 50) * 1000),
            "p99_ms": float(np.percentile(late, 99) * 1000),
            "max_ms": float(late.max() * 1000),
            "resyncs": resyncs,
        }

    @app.post("/bench/close")
    async def close_all() -> dict[str, Any]:
        for connection, tasks in agents.values():
            for task in tasks:
                task.cancel()
            await connection.leave()
        agents.clear()
        return {"ok": True}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port_file.write_text(str(sock.getsockname()[1]))
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    serving = uvicorn.Server(config).serve(sockets=[sock])
    if loop == "uvloop":
        import uvloop  # type: ignore[import-not-found, unused-ignore]

        uvloop.run(serving)
    else:
        asyncio.run(serving)


# --- clients ---------------------------------------------------------------------------------


def run_clients(base_url: str, call_ids: list[str]) -> None:
    asyncio.run(_clients(base_url, call_ids))


async def _clients(base_url: str, call_ids: list[str]) -> None:
    import av
    import httpx
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
    from parley_webrtc.opus import FRAME_BYTES, FRAME_SAMPLES, TIME_BASE, OpusEncoder

    # The clip is encoded once; every client loops the same packets (cheap to send).
    t = np.arange(round(1.2 * 48000)) / 48000
    voiced = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 9)) * 0.1
    voiced *= 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    clip = np.concatenate([voiced, np.zeros(round(0.6 * 48000))])
    pcm = np.rint(clip * 32767).astype(np.int16).tobytes()
    encoder = OpusEncoder()
    packets = [
        p
        for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)
        for p in encoder.encode(pcm[i : i + FRAME_BYTES])
    ]

    class LoopTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.start = 0.0

        async def recv(self) -> av.Packet[Any]:
            loop = asyncio.get_running_loop()
            if self.n == 0:
                self.start = loop.time()
            delay = self.start + self.n * FRAME - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            packet = av.Packet(packets[self.n % len(packets)])
            packet.pts = self.n * FRAME_SAMPLES
            packet.time_base = TIME_BASE
            self.n += 1
            return packet

    received = collections.Counter[str]()

    async def drain(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                received["frames"] += 1

    pcs: list[RTCPeerConnection] = []
    tasks: list[asyncio.Task[None]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for call_id in call_ids:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pcs.append(pc)
            pc.addTrack(LoopTrack())
            channel = pc.createDataChannel("parley")
            pc.on("track", lambda track: tasks.append(asyncio.ensure_future(drain(track))))
            await pc.setLocalDescription(await pc.createOffer())
            response = await http.post(
                f"/webrtc/calls/{call_id}/offer", json={"sdp": pc.localDescription.sdp}
            )
            response.raise_for_status()
            await pc.setRemoteDescription(RTCSessionDescription(response.json()["sdp"], "answer"))

            async def ping(channel: Any = channel) -> None:
                while True:
                    await asyncio.sleep(2)
                    if channel.readyState == "open":
                        channel.send('{"type":"ping"}')

            tasks.append(asyncio.ensure_future(ping()))
        async with asyncio.timeout(60):
            while any(pc.connectionState != "connected" for pc in pcs):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        print("READY", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        print(json.dumps({"received_frames": received["frames"]}), flush=True)
        for task in tasks:
            task.cancel()
        for pc in pcs:
            await pc.close()


# --- driver ----------------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    times = process.cpu_times()
    return float(times.user), float(times.system)


def measure(processes: list[psutil.Process], window: float) -> list[tuple[float, float]]:
    """(user, system) CPU % of one core used by each process over ``window`` seconds."""
    before = [cpu_seconds(p) for p in processes]
    began = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - began
    after = [cpu_seconds(p) for p in processes]
    return [
        (100 * (a[0] - b[0]) / elapsed, 100 * (a[1] - b[1]) / elapsed)
        for a, b in zip(after, before, strict=True)
    ]


IDLE_FRAMES = ("EpollSelector.select", "Condition.wait", "Queue.get (queue.py")


def profile_summary(pid: int, seconds: float, top: int = 16) -> str:
    """py-spy samples of the server: where its busy time goes, by self and inclusive time."""
    beside = Path(sys.executable).with_name("py-spy")
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        subprocess.run(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "100",
                "--format",
                "raw",
                "--output",
                str(out),
                "--threads",
                "--nonblocking",
            ],
            check=True,
            capture_output=True,
        )
        own: collections.Counter[str] = collections.Counter()
        inclusive: collections.Counter[str] = collections.Counter()
        busy = 0
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [f.split(" (")[0] for f in stack.split(";")[1:]]  # drop the thread name
            if not frames or stack.split(";")[-1].startswith(IDLE_FRAMES):
                continue
            busy += int(count)
            own[frames[-1]] += int(count)
            for name in set(frames):
                inclusive[name] += int(count)

    def table(counter: collections.Counter[str]) -> str:
        rows = [(name, n) for name, n in counter.most_common() if n < 0.9 * busy][:top]
        return "\n".join(f"  {100 * n / busy:5.1f}%  {name}" for name, n in rows)

    return (
        f"py-spy: {busy} busy samples at 100 Hz (idle waits left out)\n"
        f"self time:\n{table(own)}\ninclusive time:\n{table(inclusive)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["driver", "server", "client"], default="driver")
    parser.add_argument("--sizes", default="1,5,10,20")
    parser.add_argument("--quick", action="store_true", help="N = 1, 5 with 4 s windows")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per N")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--profile", type=int, default=0, help="py-spy the server at this N")
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="the server's event loop (auto: uvloop when installed, as uvicorn does)",
    )
    parser.add_argument(
        "--aiortc-decode",
        action="store_true",
        help="baseline: let aiortc decode received audio on its thread (no inline decoding)",
    )
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--calls", default="")
    args = parser.parse_args()
    if args.role == "server":
        run_server(args.port_file, args.loop, args.aiortc_decode)
        return
    if args.role == "client":
        run_clients(args.url, args.calls.split(","))
        return

    import httpx

    if args.quick:
        args.sizes, args.window, args.warmup = "1,5", 4.0, 2.0
    me = [sys.executable, __file__]
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        loop = args.loop
        if loop == "auto":
            loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        server = subprocess.Popen(
            [*me, "--role", "server", "--loop", loop, "--port-file", str(port_file)]
            + (["--aiortc-decode"] if args.aiortc_decode else [])
        )
        try:
            while not port_file.exists() or not port_file.read_text():
                if server.poll() is not None:
                    raise SystemExit("the server exited before it started")
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port_file.read_text()}"
            http = httpx.Client(base_url=url, timeout=60)
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    http.get("/webrtc/calls")
                    break
                time.sleep(0.05)
            server_ps = psutil.Process(server.pid)
            time.sleep(1.0)
            idle_cpu = sum(measure([server_ps], args.window / 2)[0])
            idle_rss = server_ps.memory_info().rss
            decode = "aiortc thread" if args.aiortc_decode else "inline"
            one, five, _ = os.getloadavg()
            print(f"load avg before: {one:.2f} / {five:.2f} (1/5 min); other processes skew CPU")
            print(
                f"cores: {psutil.cpu_count()}   window: {args.window:g} s per N   loop: {loop}"
                f"   received audio decoded: {decode}"
            )
            print(
                f"idle server (N=0): CPU {idle_cpu:.2f} % of a core, RSS {idle_rss / 2**20:.0f} MiB"
            )
            header = (
                f"{'N':>3} {'server CPU':>11} {'per session':>12} {'net/session':>12} "
                f"{'p50 late':>9} {'p99 late':>9} {'max late':>9} {'RSS/session':>12} "
                f"{'client CPU':>11} {'usr/sys':>11} {'frames in/out':>14}  bar"
            )
            print(header)
            for n in (int(s) for s in args.sizes.split(",")):
                calls = http.post("/bench/calls", json={"n": n}).json()["calls"]
                clients = subprocess.Popen(
                    [*me, "--role", "client", "--url", url, "--calls", ",".join(calls)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                assert clients.stdout is not None
                if clients.stdout.readline().strip() != "READY":
                    raise SystemExit("the clients did not connect")
                time.sleep(args.warmup)
                http.post("/bench/reset")
                client_ps = psutil.Process(clients.pid)
                profiler = None
                if args.profile == n:
                    import concurrent.futures

                    pool = concurrent.futures.ThreadPoolExecutor(1)
                    profiler = pool.submit(profile_summary, server.pid, args.window)
                (server_user, server_sys), client = measure([server_ps, client_ps], args.window)
                server_cpu, client_cpu = server_user + server_sys, sum(client)
                stats = http.get("/bench/stats").json()
                rss = server_ps.memory_info().rss
                clients.send_signal(signal.SIGTERM)
                clients.communicate(timeout=30)
                http.post("/bench/close")
                met = server_cpu / n <= 3.0 and stats["p99_ms"] <= 20.0
                if stats["connected"] != n:
                    print(f"  warning: {stats['connected']} of {n} peers connected")
                print(
                    f"{n:>3} {server_cpu:>10.1f}% {server_cpu / n:>11.2f}% "
                    f"{(server_cpu - idle_cpu) / n:>11.2f}% "
                    f"{stats['p50_ms']:>7.2f}ms {stats['p99_ms']:>7.2f}ms "
                    f"{stats['max_ms']:>7.2f}ms "
                    f"{(rss - idle_rss) / n / 2**20:>9.2f} MiB {client_cpu:>10.1f}% "
                    f"{server_user / n:>5.2f}/{server_sys / n:<5.2f} "
                    f"{stats['frames_in']:>6}/{stats['frames_out']:<7} "
                    f"{'met' if met else 'MISSED'}",
                    flush=True,
                )
                if profiler is not None:
                    print(profiler.result())
                time.sleep(1.0)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    print("bar: server CPU per session <= 3 % of one core with p99 lateness <= 20 ms")


if __name__ == "__main__":
    main()
