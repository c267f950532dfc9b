"""`Runner`: serves an `AgentLauncher` over HTTP, from a script's ``cli()`` or from code.

- ``runner.cli()``: the ``run`` and ``serve`` commands (click).
- ``runner.run(...)``: console mode: the server plus one session on one call, until it ends.
- ``runner.serve(...)``: the HTTP session API with uvicorn, optionally with several workers.
- ``runner.fast_api``: the FastAPI app, open to custom routes and middleware.

When the Runner owns the process (``run``/``serve``/a worker), SIGTERM or SIGINT drains: the
launcher stops admitting (``/ready`` answers 503, new sessions 503), running sessions finish
(up to the launcher's ``drain_timeout``), then the server exits. A second signal closes the
remaining sessions at once and forces the exit: the process ends within `FORCE_EXIT_AFTER`
seconds even if a session, a start or a part ignores cancellation. In ``run`` mode the first
signal ends the session at once. Once drained, uvicorn gives open requests
`GRACEFUL_SHUTDOWN_TIMEOUT` seconds; a client has ``http_protocol.HEADER_TIMEOUT`` s to send a
request's headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import uuid
import webbrowser
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from parley.launcher import AgentLauncher, LauncherError, validate_call_id
from parley.plugins import call_hook

from parley_server import targets
from parley_server.console import (
    ConversationPrinter,
    base_url,
    configure_logging,
    console_log_levels,
    idle_notice,
    is_loopback,
    show_splash,
)
from parley_server.context import RouteContext, on_demand_starter
from parley_server.heap import freeze_startup_heap
from parley_server.http_protocol import HeaderTimeoutH11Protocol
from parley_server.metrics import ServerMetrics, multiprocess_dir
from parley_server.options import ServeOptions
from parley_server.plugin_guard import guarding_plugin_routes

if TYPE_CHECKING:
    from fastapi import FastAPI

    from parley_server.targets import Target

logger = logging.getLogger("parley.server")

WORKER_ENV = "PARLEY_SERVER_WORKER"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SignalHandler = Callable[[int, FrameType | None], Any] | int | None

GRACEFUL_SHUTDOWN_TIMEOUT = 5.0
"""Seconds uvicorn waits for open requests once the launcher has drained."""
FORCE_EXIT_AFTER = 3.0
"""Seconds between a second SIGINT/SIGTERM and the process's forced exit."""

# uvicorn settings that bound how long a client or a shutdown can hold the server.
_UVICORN_BOUNDS: dict[str, Any] = {
    "http": HeaderTimeoutH11Protocol,
    "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_TIMEOUT,
}


@dataclass
class _ProcessMode:
    """Set when the Runner owns the process: how a signal drains and ends it."""

    drain_timeout: float | None  # None: the launcher's drain_timeout
    # Ends the server (force=True: without waiting for open connections); None: hand the
    # signal on to the server's handler.
    exit_server: Callable[[bool], None] | None


class Runner:
    """Runs ``launcher``'s agents behind the HTTP session API; see the module docstring."""

    def __init__(self, launcher: AgentLauncher, serve_options: ServeOptions | None = None) -> None:
        if not isinstance(launcher, AgentLauncher):
            raise TypeError(f"Runner needs an AgentLauncher, got {type(launcher).__name__}")
        self.launcher = launcher
        self.serve_options = serve_options if serve_options is not None else ServeOptions()
        self.metrics = ServerMetrics(launcher)
        options = self.serve_options
        self.context = RouteContext(
            launcher=launcher,
            serve_options=options,
            ensure_call=on_demand_starter(launcher) if options.start_sessions_on_demand else None,
        )
        self.fast_api: FastAPI
        if options.fast_api is None:
            from parley_server.api import create_app

            self.fast_api = create_app(
                launcher, options, lifespan=self.lifespan, metrics=self.metrics
            )
            if options.plugin_routes:
                with guarding_plugin_routes(self.fast_api, self.context.permissions):
                    call_hook("register_routes", app=self.fast_api, context=self.context)
        else:
            self.fast_api = options.fast_api
            self._wrap_lifespan(self.fast_api)
        self._started = False
        self._process: _ProcessMode | None = None
        self._previous_handlers: dict[int, _SignalHandler] = {}
        self._signals_seen = 0
        self._drain_task: asyncio.Task[None] | None = None
        self._console_start: asyncio.Task[Any] | None = None  # `run`'s session, while it starts
        self._tasks: set[asyncio.Task[Any]] = set()
        self.target: Target | None = targets.caller_target(_calling_module())
        targets.record(self)

    # --- lifecycle ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any = None) -> AsyncIterator[None]:
        """The app's lifespan: start the launcher (and metrics), stop it on the way out."""
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        if self._started:
            return
        self._started = True
        # Before the launcher's warm-up (seconds of model loading): a signal during it is
        # ours to handle, not uvicorn's (which would wait for the start and then give up).
        self._install_signal_handlers()
        await self.launcher.start()
        self.metrics.start()
        if self._process is not None:  # this process serves only us: see parley_server.heap
            freeze_startup_heap()

    async def shutdown(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            await self.launcher.stop()
            if self._drain_task is not None:
                await asyncio.gather(self._drain_task, return_exceptions=True)
        finally:
            self._restore_signal_handlers()
            await self.metrics.stop()

    def _wrap_lifespan(self, app: FastAPI) -> None:
        """A user's own app keeps its lifespan; the launcher starts and stops around it."""
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            async with self.lifespan(app), inner(app) as state:
                yield state

        app.router.lifespan_context = lifespan

    # --- signals --------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if self._process is None or threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()

        def handler(sig: int, frame: FrameType | None) -> None:
            self._signals_seen += 1
            if self._signals_seen == 2:
                # Armed here, not on the loop: the loop may be what is stuck.
                _kill_later(FORCE_EXIT_AFTER)
            loop.call_soon_threadsafe(self._on_signal, sig)

        for sig in _SIGNALS:
            self._previous_handlers[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)

    def _restore_signal_handlers(self) -> None:
        previous, self._previous_handlers = self._previous_handlers, {}
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def _on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self._console_start is not None:
            self._console_start.cancel()  # `run`: no point finishing a start to close it
        if self._drain_task is None:
            logger.info(
                "%s: draining; no new sessions (/ready answers 503); %d session(s) running",
                name,
                self.launcher.stats().running,
            )
            self._drain_task = asyncio.create_task(self._drain_then_exit(sig))
            return
        logger.warning(
            "%s again: closing every session now; the process exits within %g s",
            name,
            FORCE_EXIT_AFTER,
        )
        self._spawn(self.launcher.stop(drain_timeout=0))
        if self._process is not None and self._process.exit_server is not None:
            self._process.exit_server(True)
        else:
            self._forward(sig)

    async def _drain_then_exit(self, sig: int) -> None:
        try:
            timeout = self._process.drain_timeout if self._process else None
            await self.launcher.stop(drain_timeout=timeout)
            logger.info("drained; shutting down")
        finally:
            if self._process is not None and self._process.exit_server is not None:
                self._process.exit_server(False)
            else:
                self._forward(sig)

    def _forward(self, sig: int) -> None:
        """Hand the signal to the handler we replaced (uvicorn's, in a worker)."""
        previous = self._previous_handlers.get(sig)
        if callable(previous):
            previous(sig, None)
        else:
            self._restore_signal_handlers()
            signal.raise_signal(sig)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- URLs -----------------------------------------------------------------------------------

    def demo_url(self, base: str, call_id: str, session: Any = None) -> str | None:
        """The first demo page a plugin registered that serves ``session``, for ``call_id``;
        None if there is none."""
        for page in self.context.demo_pages:
            if session is None or page.serves is None or page.serves(session):
                return page.url(base, call_id)
        return None

    # --- entry points ---------------------------------------------------------------------------

    def cli(self, args: list[str] | None = None) -> None:
        """The ``run`` and ``serve`` commands; ``args`` defaults to ``sys.argv[1:]``."""
        if targets.capturing_active():
            return  # loaded by a worker or by ``parley serve``: it serves, not this call
        from parley_server.cli import runner_group

        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "agent"
        runner_group(self).main(args=args, prog_name=prog)

    def run(
        self,
        call_type: str = "default",
        call_id: str | None = None,
        debug: bool = False,
        log_level: str = "INFO",
        no_demo: bool = False,
        video_track_override: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        no_splash: bool = False,
        http_log_level: str | None = None,
        log_level_libs: str | None = None,
        log_format: str | None = None,
        idle_timeout: float | None = None,
    ) -> None:
        """Console mode: serve, start one session on ``call_id`` (generated when None),
        print the URL to open (and open it unless ``no_demo``) and the conversation, return
        when the session ends or on Ctrl-C. The server's root redirects to the page.

        ``idle_timeout`` (seconds; 0: never) overrides the launcher's ``agent_idle_timeout``:
        how long the agent stays on a call no one else is on, which ends ``run``. The HTTP
        server's and other libraries' logs stay at WARNING unless ``log_level`` is DEBUG or
        ``http_log_level``/``log_level_libs`` say otherwise; see `configure_logging`."""
        if targets.capturing_active():
            return
        if idle_timeout is not None:
            if idle_timeout < 0:
                raise ValueError(f"idle_timeout must be >= 0 (0: off), got {idle_timeout}")
            self.launcher.agent_idle_timeout = idle_timeout or None
        call_id = (
            validate_call_id(call_id) if call_id is not None else f"call-{uuid.uuid4().hex[:8]}"
        )
        params: dict[str, Any] = {}
        if video_track_override is not None:
            path = Path(video_track_override)
            if not path.is_file():
                raise FileNotFoundError(f"video track override: no such file: {path}")
            params["video_track_override"] = str(path.resolve())
        http_log_level, log_level_libs = console_log_levels(
            log_level, http_log_level, log_level_libs
        )
        configure_logging(
            log_level, http_log_level, log_level_libs=log_level_libs, log_format=log_format
        )
        show_splash("console mode", enabled=not no_splash)
        try:
            code = asyncio.run(
                self._console(call_type, call_id, params, host, port, no_demo), debug=debug
            )
        except KeyboardInterrupt:
            # Ctrl-C before the server took the signal over (or after it let it go): a
            # plain exit, as a shell expects of an interrupted command.
            code = 130
        if code:
            raise SystemExit(code)

    async def _console(
        self,
        call_type: str,
        call_id: str,
        params: dict[str, Any],
        host: str,
        port: int,
        no_demo: bool,
    ) -> int:
        import uvicorn

        config = uvicorn.Config(
            self.fast_api, host=host, port=port, log_config=None, lifespan="on", **_UVICORN_BOUNDS
        )
        server = uvicorn.Server(config)
        self._process = _ProcessMode(drain_timeout=0, exit_server=_exit_setter(server))
        serving = asyncio.create_task(server.serve(), name="parley-uvicorn")
        # uvicorn exposes `started` as a flag, not an event.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if serving.done():
            await serving
            if self._signals_seen:
                return 0  # Ctrl-C during the warm-up
            print("the server did not start; see the log above", file=sys.stderr)
            return 1
        base = base_url(host, _bound_port(server, port))
        starting = asyncio.create_task(
            self.launcher.start_session(call_id, call_type, **params), name="parley-console-start"
        )
        self._console_start = starting
        try:
            await asyncio.wait({starting, serving}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._console_start = None
        if not starting.done() or starting.cancelled():
            starting.cancel()  # stopped (Ctrl-C) while the agent was starting
            await asyncio.gather(starting, return_exceptions=True)
            server.should_exit = True
            await serving
            return 0
        try:
            session = starting.result()
        except LauncherError as exc:
            print(f"could not start the agent: {exc}", file=sys.stderr)
            server.should_exit = True
            await serving
            return 1
        page = self.demo_url(base, call_id, session)
        printer = ConversationPrinter(idle_timeout=self.launcher.agent_idle_timeout)
        if page is not None:
            # One URL to open: the server's root leads there too.
            _redirect_root(self.fast_api, page.removeprefix(base) or "/")
            print(f"Open {page} to talk to the agent.", flush=True)
            if not no_demo:
                await asyncio.to_thread(webbrowser.open, page)
        else:
            print(
                f"Agent session {session.id} is on call {call_id}: "
                f"{base}/calls/{call_id}/sessions/{session.id} (no plugin serves a demo page; "
                "install parley-webrtc for one in the browser)",
                flush=True,
            )
        print(idle_notice(self.launcher.agent_idle_timeout), flush=True)
        printer.attach(session)
        ended = asyncio.create_task(session.wait(), name="parley-console-session")
        await asyncio.wait({serving, ended}, return_when=asyncio.FIRST_COMPLETED)
        server.should_exit = True
        await serving
        ended.cancel()
        await asyncio.gather(ended, return_exceptions=True)
        return 0

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        agents_log_level: str = "INFO",
        http_log_level: str = "INFO",
        debug: bool = False,
        *,
        workers: int = 1,
        no_splash: bool = False,
        target: Target | None = None,
        log_level_libs: str = "WARNING",
        log_format: str | None = None,
    ) -> None:
        """Serve the HTTP session API with uvicorn until SIGTERM/SIGINT (then drain).

        ``workers`` > 1 runs that many processes; each loads this Runner again from
        ``target`` (default: the module or script that built it) and runs its own launcher,
        so they must share a registry store (parley-redis) to see each other's sessions.
        """
        if targets.capturing_active():
            return
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        where = target or self.target
        if workers > 1 and where is None:
            raise RuntimeError(
                "--workers needs to find this Runner again in each worker process: run it from "
                "a file (python agent.py serve) or a module (python -m pkg.agent serve), or use "
                "`parley serve path/to/agent.py --workers N`"
            )
        configure_logging(
            agents_log_level, http_log_level, log_level_libs=log_level_libs, log_format=log_format
        )
        logging_options = {"log_level_libs": log_level_libs, "log_format": log_format}
        show_splash(f"serving {base_url(host, port)}", enabled=not no_splash)
        if not is_loopback(host) and self.serve_options.open_access:
            logger.warning(
                "serving on %s with no permission callback: anyone who can reach this port can "
                "start and close agent sessions; set ServeOptions(can_start_session=...) etc.",
                host,
            )
        if debug:
            os.environ["PYTHONASYNCIODEBUG"] = "1"
        if workers > 1:
            assert where is not None
            self._serve_workers(
                host, port, agents_log_level, http_log_level, workers, where, logging_options
            )
            return
        import uvicorn

        config = uvicorn.Config(
            self.fast_api,
            host=host,
            port=port,
            log_config=None,
            log_level=http_log_level.lower(),
            lifespan="on",
            **_UVICORN_BOUNDS,
        )
        server = uvicorn.Server(config)
        self._process = _ProcessMode(drain_timeout=None, exit_server=_exit_setter(server))
        asyncio.run(server.serve(), debug=debug)
        if not server.started:
            raise SystemExit(1)

    def _serve_workers(
        self,
        host: str,
        port: int,
        log_level: str,
        http_log_level: str,
        workers: int,
        where: Target,
        logging_options: dict[str, Any],
    ) -> None:
        import uvicorn
        from parley.stores.memory import MemoryStore

        if isinstance(self.launcher.registry.store, MemoryStore):
            logger.warning(
                "%d workers with the in-memory session store: each worker sees only its own "
                "sessions (GET/DELETE may answer 404 from another worker) and limits count per "
                "worker; use a shared store (pip install parley-redis) for consistent answers",
                workers,
            )
        os.environ[WORKER_ENV] = json.dumps(
            {
                "target": asdict(where),
                "log_level": log_level,
                "http_log_level": http_log_level,
                **logging_options,
            }
        )
        # One set of Prometheus files for all workers: /metrics on any of them sums them all.
        with multiprocess_dir():
            uvicorn.run(
                "parley_server.workers:create_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_config=None,
                log_level=http_log_level.lower(),
                lifespan="on",
                **_UVICORN_BOUNDS,
            )

    def worker_app(self) -> FastAPI:
        """The app a uvicorn worker process serves: this Runner owns the process, so a signal
        drains its sessions and is then handed on to uvicorn's handler."""
        self._process = _ProcessMode(drain_timeout=None, exit_server=None)
        return self.fast_api


def _redirect_root(app: FastAPI, location: str) -> None:
    """``GET /`` answers a redirect to ``location``, unless the app already serves ``/``."""
    if any(getattr(route, "path", None) == "/" for route in app.routes):
        return
    from fastapi.responses import RedirectResponse

    async def root() -> RedirectResponse:
        return RedirectResponse(location, status_code=307)

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)


def _calling_module() -> str:
    """The module that built the Runner, skipping this package's own frames."""
    frame = inspect.currentframe()
    while frame is not None:
        name = str(frame.f_globals.get("__name__", "__main__"))
        if name != "parley_server" and not name.startswith("parley_server."):
            return name
        frame = frame.f_back
    return "__main__"


def _exit_setter(server: Any) -> Callable[[bool], None]:
    def exit_server(force: bool) -> None:
        server.should_exit = True
        if force:
            server.force_exit = True

    return exit_server


def _kill_later(delay: float) -> None:
    """SIGKILL this process in ``delay`` seconds unless it has ended: nothing, not a stuck
    task nor a blocked event loop, can stop that (a daemon thread's timer)."""

    def force_exit() -> None:
        logger.error("forced exit: the server did not stop within %g s of the second signal", delay)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    timer = threading.Timer(delay, force_exit)
    timer.daemon = True
    timer.start()


def _bound_port(server: Any, default: int) -> int:
    for listener in getattr(server, "servers", ()):
        for sock in getattr(listener, "sockets", ()):
            port: int = sock.getsockname()[1]
            return port
    return default
