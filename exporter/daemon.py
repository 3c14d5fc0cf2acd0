"""The running exporter: store + scheduler + exposition cache + web server, and reload.

The daemon alone brackets its start-up for the garbage collector (:mod:`exporter.gcpolicy`):
from the reading of its config (:meth:`Daemon.load`; else from the start of polling) until every
account was polled once (the store's :class:`~exporter.readiness.Readiness`), or at most
:data:`~exporter.gcpolicy.STARTUP_LIMIT` after polling started."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

import aiohttp
from aiohttp import web

from . import __version__, gcpolicy
from .config import Config
from .configfile import ConfigError
from .http import HttpClient
from .listen import parse_listen_address
from .log import LoopErrorLogger, get_logger, redactor
from .metrics import ExpositionCache
from .scheduler import Scheduler
from .statuscache import StatusCache
from .store import Store
from .web import create_app
from .webconfig import WebConfig, WebProtection
from .webguard import KEEPALIVE_TIMEOUT, ConnectionGuard, GuardedSite, connection_limit

log = get_logger("exporter")
T = TypeVar("T")

STOP_TIMEOUT = 4.0
#: How long a stop waits for HTTP requests in progress before closing their connections.
SHUTDOWN_GRACE = 1.0
#: A reload whose files are not read within this many seconds (a file system that hangs) is
#: refused; the thread reading them is left behind, the daemon goes on.
RELOAD_TIMEOUT = 30.0


def new_session(max_connections: int = 0) -> aiohttp.ClientSession:
    """The shared client session. No connection cap of its own by default (0): the scheduler's
    per-provider ``max_concurrency`` semaphores bound the connections in use. Proxies from the
    environment are applied per host by :func:`exporter.http.env_proxy` (``trust_env`` would
    read the environment and ~/.netrc in a worker thread on every request)."""
    connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
        trust_env=False,
    )


async def in_daemon_thread(fn: Callable[[], T], timeout: float) -> T:
    """``fn()`` in a thread of its own, waited for at most ``timeout`` seconds (then
    TimeoutError). A daemon thread, not the default executor: a call that never returns costs
    that thread, never the process's exit (the executor's threads are joined at exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: BaseException | None) -> None:
        if future.done():  # timed out meanwhile
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            outcome: tuple[T | None, BaseException | None] = (fn(), None)
        except BaseException as exc:  # handed to the awaiting task
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name="config-load", daemon=True).start()
    async with asyncio.timeout(timeout):
        return await future


def raise_open_files_limit() -> None:
    """Lift the soft limit on open files to the hard one (as Go programs do): with thousands of
    accounts, hundreds of connections may be open at once at start-up."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):
        pass


class Daemon:
    """One exporter instance. ``config_loader`` is re-run on every reload."""

    def __init__(
        self,
        config: Config,
        *,
        config_loader: Callable[[], Config] | None = None,
        listen_address: str = ":9966",
        web_config: WebConfig | None = None,
        web_config_loader: Callable[[], WebConfig] | None = None,
    ) -> None:
        self.config = config
        self.config_loader = config_loader
        self.web = WebProtection(web_config)
        self.web_config_loader = web_config_loader
        self.listen_address = listen_address
        self.store = Store()
        self.cache = ExpositionCache(self.store)
        self.status = StatusCache(self.store)
        self.stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._scheduler: Scheduler | None = None
        self._runner: web.AppRunner | None = None
        self._render_task: asyncio.Task[None] | None = None
        self._gc = gcpolicy.StartupGc()
        self._startup_task: asyncio.Task[None] | None = None
        self.bound_port: int | None = None
        self.started = False
        self.reload_timeout = RELOAD_TIMEOUT

    @classmethod
    def load(
        cls,
        config_loader: Callable[[], Config],
        *,
        listen_address: str = ":9966",
        web_config: WebConfig | None = None,
        web_config_loader: Callable[[], WebConfig] | None = None,
    ) -> Daemon:
        """The daemon of the config ``config_loader`` reads (now, and again on every reload;
        ConfigError when it is refused). Start-up begins before the config is read: parsing
        10,000 accounts takes two and a half times as long with automatic collection on."""
        pause = gcpolicy.StartupGc()
        pause.start()
        try:
            config = config_loader()
        except BaseException:
            pause.stop()
            raise
        daemon = cls(
            config,
            config_loader=config_loader,
            listen_address=listen_address,
            web_config=web_config,
            web_config_loader=web_config_loader,
        )
        daemon._gc = pause
        return daemon

    async def start(self) -> None:
        raise_open_files_limit()
        asyncio.get_running_loop().set_exception_handler(LoopErrorLogger())
        redactor.set_secrets(self.config.secrets())
        self._session = new_session()
        self._scheduler = Scheduler(self.store, HttpClient(self._session), self.config)
        self.store.set_reload_result(True)
        app = create_app(self.store, self.cache, self.reload, self.status)
        guard = ConnectionGuard(connection_limit())
        guard.install(app)
        self.web.install(app)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_GRACE,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
        )
        await self._runner.setup()
        host, port = parse_listen_address(self.listen_address)
        site = GuardedSite(self._runner, guard, host, port, ssl_context=self.web.ssl_context)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.bound_port = int(addresses[0][1])
        self.started = True
        self._gc.start()
        await self._scheduler.start()
        self._startup_task = asyncio.create_task(self._end_startup(), name="end-startup")
        await self.cache.refresh()
        self._render_task = asyncio.create_task(self.cache.run(), name="render")
        log.info(
            "exporter started",
            version=__version__,
            listen=self.listen_address,
            scheme=self.web.scheme,
            basic_auth=self.web.auth.enabled,
            accounts=len(self.config.accounts),
        )

    async def _end_startup(self) -> None:
        """Start-up is over once every account was polled (or after STARTUP_LIMIT)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.store.readiness.wait_polled(), gcpolicy.STARTUP_LIMIT)
        self._gc.stop()

    async def reload(self) -> list[str]:
        """Load the config (and the web config) again and apply both; on any error apply
        nothing and keep the old ones running."""
        if self.config_loader is None:
            return ["reload is not available: the config was not loaded from a file"]
        async with self._reload_lock:
            errors: list[str] = []
            config = await self._load(self.config_loader, "", errors)
            web_config = None
            if self.web_config_loader is not None:
                web_config = await self._load(self.web_config_loader, "web config: ", errors)
                if web_config is not None:
                    errors.extend(self.web.check_reload(web_config))
            if self.stopping.is_set():
                errors.append("the exporter is stopping: nothing applied")
            if not errors and web_config is not None:
                errors.extend(self.web.apply(web_config))
            if errors or config is None:
                self.store.set_reload_result(False)
                log.error("config reload refused", errors=errors)
                return errors
            redactor.set_secrets([*self.config.secrets(), *config.secrets()])
            assert self._scheduler is not None
            gcpolicy.thaw()  # the stopped loops' garbage must be collectable
            await self._scheduler.apply(config)
            self.config = config
            redactor.set_secrets(config.secrets())
            self.store.set_reload_result(True)
            log.info("config reloaded", accounts=len(config.accounts))
            return []

    async def _load(self, loader: Callable[[], T], what: str, errors: list[str]) -> T | None:
        """Run a config loader off the loop; any failure is added to ``errors``."""
        try:
            return await in_daemon_thread(loader, self.reload_timeout)
        except ConfigError as exc:
            prefix = f"{exc.source}: " if what else ""
            errors.extend(f"{prefix}{err}" for err in exc.errors)
        except TimeoutError:
            errors.append(
                f"{what}(file): not read within {self.reload_timeout:g}s "
                "(a file that blocks, such as a FIFO, or a hung file system)"
            )
        except Exception as exc:  # whatever a loader does wrong, the old config stays
            errors.append(f"{what}(file): cannot be loaded ({type(exc).__name__})")
        return None

    async def stop(self) -> None:
        self.stopping.set()  # a reload still reading its files applies nothing
        for task in (self._startup_task, self._render_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._gc.stop()
        if self._scheduler is not None:
            await self._scheduler.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        if self.started:  # not when it never started (the port was taken, say)
            log.info("exporter stopped")

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        reloads: set[asyncio.Task[list[str]]] = set()

        def on_hup() -> None:
            task = asyncio.create_task(self.reload(), name="reload")
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        try:
            await self.start()
            await self.stopping.wait()
            log.info("stopping")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            for task in reloads:
                task.cancel()
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self.stop()
            except TimeoutError:
                log.error("stop timed out")
