"""Serving the application with uvicorn, with bounded connections (``decidua serve``).

uvicorn (over h11) on its own holds a connection as long as its client keeps sending a header line now and
then, lets connections pile up until the process runs out of file descriptors, and then logs a traceback per
failed ``accept``. This module runs uvicorn with an h11 protocol that adds, from :class:`ServerLimits`:

* **a header deadline**: a request's line and headers must all arrive within ``header_timeout`` seconds of the
  connection opening (or of the previous response, on a kept-alive connection), however slowly they trickle;
  otherwise the connection is answered ``408`` (if it had started a request) and closed;
* **a pace for bodies**: once its headers are in, a request's body must arrive at ``min_body_rate`` bytes per
  second on average, after a grace of ``header_timeout`` seconds (a 2 MB case at the default 8 kB/s: within
  4 minutes); otherwise it is answered ``408`` (if its answer has not started) and closed. Time the server itself
  stops reading (the application not taking the body yet) is not held against the client;
* **a cap on open connections**: a connection beyond ``max_connections`` is answered ``503`` with ``Retry-After``
  at once and closed, so that the process stays below its open-file limit (raised to the hard limit at start,
  the cap lowered to fit if it cannot be); uvicorn's ``limit_concurrency`` also answers 503 when more requests
  than that are running;
* **bounded keep-alive**: an idle kept-alive connection is closed after ``keep_alive`` seconds;
* **one log line per kind and interval**: refused, timed-out and malformed connections, and ``accept`` failures,
  are logged once per :data:`LOG_INTERVAL_SECONDS` with the number seen since, never a line or a traceback per
  connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import HANDLED_SIGNALS, ServerState

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

log = logging.getLogger("decidua.web.server")

LOG_INTERVAL_SECONDS = 60.0
RESERVED_FILES = 128  # descriptors kept for everything but client connections: the database, the PDF workers, logs
LINGER_SECONDS = 2.0  # a refused connection is read (and dropped) this long before closing, so its 503 arrives


def max_lingering(max_connections: int) -> int:
    """Refused connections lingering at once at most (a quarter of the cap, 16 to 256); beyond, a connection over
    the cap is closed without an answer."""
    return max(16, min(256, max_connections // 4))


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Connection limits of ``decidua serve`` (from :class:`~decidua.entrypoints.http.settings.Settings`)."""

    max_connections: int
    header_timeout: float
    keep_alive: int
    min_body_rate: int = 8192  # bytes per second, on average, of a request body once its headers are in


class RateLimitedLog:
    """Logs a kind of event once per ``interval`` seconds, with the number of events of that kind since."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL_SECONDS) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def should_log(self, kind: str) -> int | None:
        """Count an event of ``kind``: the number of events to report if one should be logged now, else None."""
        now = time.monotonic()
        self._count[kind] = self._count.get(kind, 0) + 1
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            return None
        self._last[kind] = now
        return self._count.pop(kind)

    def warning(self, kind: str, message: str) -> None:
        n = self.should_log(kind)
        if n is not None:
            self.logger.warning("%s [%d since the last such line; at most one every %.0f s]", message, n, self.interval)


class _OncePerInterval(logging.Filter):
    """Lets uvicorn's per-connection warnings (malformed requests, requests over ``limit_concurrency``) through
    once per interval, with their number."""

    MESSAGES = frozenset({"Invalid HTTP request received.", "Exceeded concurrency limit."})

    def __init__(self, limiter: RateLimitedLog) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in self.MESSAGES or record.args:
            return True
        n = self.limiter.should_log(str(record.msg))
        if n is None:
            return False
        record.msg = f"{record.msg} [{n} since the last such line; at most one every {self.limiter.interval:.0f} s]"
        return True


def _response(status: int, reason: str, text: str, extra: str = "") -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n{extra}"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a cap on open connections (see the module)."""

    limits: ServerLimits
    events: RateLimitedLog
    lingering: set[BoundedH11Protocol]  # refused connections not closed yet (shared by the server's connections)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._refused = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._cycle_seen: object = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0  # when the body's clock started (loop time)
        self._body_received = 0  # bytes received since (the last chunk of the headers included)

    # --- the cap --------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if len(self.connections) >= self.limits.max_connections:
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def _refuse(self, transport: asyncio.Transport) -> None:
        self._refused = True
        self.transport = transport
        self.events.warning("refused", f"connections refused with 503: {self.limits.max_connections} already open")
        if len(self.lingering) >= max_lingering(self.limits.max_connections):
            transport.abort()
            return
        retry = f"retry-after: {max(1, math.ceil(self.limits.header_timeout))}\r\n"
        transport.write(_response(503, "Service Unavailable", "Too many connections; try again shortly.", retry))
        if transport.can_write_eof():
            transport.write_eof()  # the answer, then FIN; what the client still sends is read and dropped
        self.lingering.add(self)
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        counting = self._body_timer is not None and self.cycle is self._cycle_seen
        super().data_received(data)
        if counting:
            self._body_received += len(data)
        self._watch_request()

    def _watch_request(self) -> None:
        """After bytes arrived or a response ended (uvicorn then starts a request already buffered): a new
        request's headers are complete, so its header deadline is met and its body's clock starts; a body that
        is complete stops its clock."""
        if self.cycle is not None and self.cycle is not self._cycle_seen:
            self._cycle_seen = self.cycle
            self._cancel_header_timer()
            if self.cycle.more_body:
                self._start_body_clock()
        if self._body_timer is not None and (self.cycle is None or not self.cycle.more_body):
            self._cancel_body_timer()  # the body is complete

    def eof_received(self) -> None:
        if self._refused:
            self.transport.close()
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        if self._refused:
            self.lingering.discard(self)
            if self._linger_timer is not None:
                self._linger_timer.cancel()
            return
        super().connection_lost(exc)

    # --- the header deadline --------------------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_request()  # a pipelined request uvicorn has just started from its buffer
        if self.transport.is_closing() or self.conn.their_state is h11.SEND_BODY:
            return  # the rest of a body the application did not read: its clock runs on
        if self.cycle is None or self.cycle.response_complete:
            self._arm_header_timer()  # the next request on this connection has the same deadline

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # closing already, or a request is being answered
        if self.conn.their_state is h11.SEND_BODY:  # a body still coming after its answer: the body's clock
            if self._body_timer is None and self.cycle is not None and self.cycle.more_body:
                self._start_body_clock()
            return
        started, _ = self.conn.trailing_data
        if started and self.conn.our_state is h11.IDLE:
            self.events.warning(
                "header_timeout",
                f"connections closed with 408: request headers not complete within {self.limits.header_timeout:g} s",
            )
            self.transport.write(_response(408, "Request Timeout", "Request headers took too long."))
        if self.conn.our_state not in (h11.ERROR, h11.CLOSED, h11.MUST_CLOSE):
            with suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
        self.transport.close()

    # --- the body's pace ------------------------------------------------------------------------------------

    def _start_body_clock(self) -> None:
        self._cancel_body_timer()
        self._body_started = self.loop.time()
        self._body_received = len(self.cycle.body) if self.cycle is not None else 0  # what came with the headers
        self._body_timer = self.loop.call_later(self.limits.header_timeout, self._body_timeout)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timeout(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            # the server is not reading (64 kB wait for the application), or the client waits for its
            # 100 Continue, which the application sends when it reads: not the client's time; start afresh
            self._start_body_clock()
            return
        now = self.loop.time()
        due = self._body_started + self.limits.header_timeout + self._body_received / self.limits.min_body_rate
        if now < due:  # on pace so far: look again when what it sent runs out
            self._body_timer = self.loop.call_at(due, self._body_timeout)
            return
        self.events.warning(
            "body_timeout",
            f"connections closed with 408: request body slower than {self.limits.min_body_rate} bytes/s",
        )
        if not cycle.response_started:
            self.transport.write(_response(408, "Request Timeout", "Request body arrived too slowly."))
        self.transport.close()


def open_file_limit(wanted: int) -> int | None:
    """Raise this process's soft limit on open files towards ``wanted`` (at most the hard limit); the limit now in
    force, or None where the system has none to read."""
    if resource is None:  # pragma: no cover
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return None if soft == resource.RLIM_INFINITY else soft


def effective_limits(limits: ServerLimits) -> ServerLimits:
    """``limits`` with the connection cap lowered, if it must be, to what the open-file limit can hold (the cap,
    the refused connections lingering, and the descriptors the rest of the server needs)."""
    need = limits.max_connections + max_lingering(limits.max_connections) + RESERVED_FILES
    available = open_file_limit(need)
    if available is None or available >= need:
        return limits
    budget = max(2, available - RESERVED_FILES)
    cap = next((c for c in range(budget, 0, -1) if c + max_lingering(c) <= budget), 1)
    log.warning(
        "at most %d connections (not %d): the open-file limit is %d (raise it with ulimit -n)",
        cap,
        limits.max_connections,
        available,
    )
    return dataclasses.replace(limits, max_connections=cap)


def _loop_errors(events: RateLimitedLog) -> Any:
    """An event-loop exception handler that reports a failing ``accept`` (out of file descriptors) once per
    interval instead of one traceback per attempt; anything else goes to the default handler."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and "accept" in str(context.get("message", "")):
            events.warning("accept", f"cannot accept connections: {exc.strerror or type(exc).__name__}")
            return
        loop.default_exception_handler(context)

    return handler


def protocol_class(limits: ServerLimits, events: RateLimitedLog) -> type[BoundedH11Protocol]:
    """A protocol class for one server, carrying its limits (uvicorn builds protocols from a class)."""
    return type("DeciduaH11Protocol", (BoundedH11Protocol,), {"limits": limits, "events": events, "lingering": set()})


class _Server(uvicorn.Server):
    """uvicorn's server, returning after a graceful shutdown on SIGINT or SIGTERM where uvicorn's raises the signal
    again (which ends the process before the caller's ``finally`` blocks: the PDF workers would be left to the
    operating system)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve(app: Any, host: str, port: int, limits: ServerLimits, **options: Any) -> None:
    """Run ``app`` with uvicorn until it is stopped (Ctrl+C, SIGTERM: then it returns), under ``limits``;
    ``options`` go to :class:`uvicorn.Config` as they are (logging, proxy headers)."""
    limits = effective_limits(limits)
    events = RateLimitedLog(log)
    logging.getLogger("uvicorn.error").addFilter(_OncePerInterval(events))
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(limits, events),
        ws="none",
        # uvicorn answers 503 when this many connections or requests are open, counting the one asking: one more
        # than the cap, so that it refuses requests running on past their connections, not the cap's last one
        limit_concurrency=limits.max_connections + 1,
        timeout_keep_alive=limits.keep_alive,
        **options,
    )
    server = _Server(config)

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(_loop_errors(events))
        await server.serve()

    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(run())
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE: the port in use, the application failing to start


__all__ = ["BoundedH11Protocol", "RateLimitedLog", "ServerLimits", "effective_limits", "serve"]
