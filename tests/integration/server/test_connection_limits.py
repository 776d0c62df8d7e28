"""``decidua serve`` bounds slow and idle connections: real sockets against the server in its own process.

A client that trickles its request headers (slowloris) is answered 408 and dropped after the header timeout; an
idle connection, opened or kept alive, is closed; a connection beyond the cap is answered 503 with Retry-After;
and however many connections are refused or cut off, the server's log gets one line per kind and interval,
never a traceback per connection.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from decidua.entrypoints.http.server import RateLimitedLog, ServerLimits, effective_limits

HEALTH = b"GET /api/health HTTP/1.1\r\nHost: test\r\n\r\n"


@dataclass
class Server:
    port: int
    log: Path

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def stderr(self) -> str:
        return self.log.read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(tmp_path: Path, *options: str) -> Iterator[Server]:
    port = _free_port()
    log = tmp_path / "stderr.log"
    code = "from decidua.entrypoints.cli.main import main; main()"
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    argv = [sys.executable, "-c", code, "serve", "--port", str(port), "--database-url", database, *options]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 60
        while "Application startup complete" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Server(port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a 1 s header timeout, a 1 s keep-alive and bodies at 1000 bytes/s at least."""
    options = ("--header-timeout", "1", "--keep-alive", "1", "--min-body-rate", "1000")
    yield from _start(tmp_path_factory.mktemp("quick"), *options)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server taking 3 connections at most."""
    yield from _start(tmp_path_factory.mktemp("capped"), "--max-connections", "3", "--header-timeout", "30")


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or ``limit`` seconds pass), and when."""
    started = time.monotonic()
    data = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < limit:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - started


def _status(response: bytes) -> int:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", response)
    assert m is not None, response
    return int(m.group(1))


def _ask(server: Server) -> int:
    with server.connect() as sock:
        sock.sendall(HEALTH)
        return _status(sock.recv(4096))


def test_a_client_trickling_its_headers_is_answered_408_and_dropped(quick: Server) -> None:
    sockets = [quick.connect() for _ in range(20)]
    started = time.monotonic()
    for sock in sockets:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: test\r\n")
    closed: dict[int, tuple[bytes, float]] = {}
    while len(closed) < len(sockets) and time.monotonic() - started < 8:
        for i, sock in enumerate(sockets):
            if i in closed:
                continue
            try:
                sock.sendall(b"X-Slow: 1\r\n")  # a header line every 0.25 s: never complete, never idle
            except OSError:
                closed[i] = (b"", time.monotonic() - started)
                continue
            sock.settimeout(0.01)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            closed[i] = (data, time.monotonic() - started)
        time.sleep(0.25)
    for sock in sockets:
        sock.close()
    assert len(closed) == len(sockets), "slow clients still held after 8 s"
    assert all(after < 4 for _, after in closed.values())
    assert sum(data.startswith(b"HTTP/1.1 408") for data, _ in closed.values()) >= len(sockets) - 2
    assert _ask(quick) == 200  # the server answers others meanwhile


LOGIN_HEAD = b"POST /api/session HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


def _send_body(sock: socket.socket, size: int, chunk: int, every: float, limit: float) -> tuple[bytes, float]:
    """Sends a login request's ``size``-byte body, ``chunk`` bytes every ``every`` seconds; what the server answers
    (read until it closes or the body is sent and answered) and when."""
    sock.sendall(LOGIN_HEAD % size)
    login = b'{"email": "nobody@example.org", "password": "not this one"'
    body = login + b" " * (size - len(login) - 1) + b"}"  # JSON's white space as padding
    assert len(body) == size
    started, sent, data = time.monotonic(), 0, b""
    sock.settimeout(0.01)
    while time.monotonic() - started < limit:
        if sent < size:
            try:
                sock.sendall(body[sent : sent + chunk])
            except OSError:
                break
            sent += chunk
        try:
            got = sock.recv(65536)
        except TimeoutError:
            time.sleep(every)
            continue
        except ConnectionResetError:
            break
        if not got:
            break
        data += got
        if sent >= size and b"\r\n\r\n" in data:
            break
    return data, time.monotonic() - started


def test_a_body_trickled_slower_than_the_rate_is_answered_408_and_dropped(quick: Server) -> None:
    """Headers complete, then 10 bytes every 0.25 s (40 bytes/s against 1000): cut after the 1 s grace."""
    with quick.connect() as sock:
        data, after = _send_body(sock, 5000, 10, 0.25, 8)
    assert _status(data) == 408
    assert after < 4
    assert _ask(quick) == 200


def test_a_pipelined_request_whose_body_never_comes_is_cut(quick: Server) -> None:
    """A request started by the server from its buffer (after answering the one before it on the connection)
    keeps the same pace: the second request's headers come with the first, its body never."""
    with quick.connect() as sock:
        sock.sendall(HEALTH + LOGIN_HEAD % 1000)
        data, after = _read_until_closed(sock, 8)
    assert data.startswith(b"HTTP/1.1 200")
    assert b"HTTP/1.1 408" in data
    assert after < 4


def test_body_bytes_sent_with_the_headers_count(quick: Server) -> None:
    """999 of 1,000 bytes in the headers' packet, the last one 1.5 s later: on pace (1,000 bytes/s after 1 s)."""
    login = b'{"email": "nobody@example.org", "password": "not this one"'
    body = login + b" " * (1000 - len(login) - 1) + b"}"
    with quick.connect() as sock:
        sock.sendall(LOGIN_HEAD % 1000 + body[:-1])
        time.sleep(1.5)
        sock.sendall(body[-1:])
        data, _ = _read_until_closed(sock, 5)
    assert _status(data) == 401


def test_a_body_at_pace_is_read_whole(quick: Server) -> None:
    """6,000 bytes at about 2,000 bytes/s (three seconds, three times the grace) reach the application."""
    with quick.connect() as sock:
        data, after = _send_body(sock, 6000, 500, 0.25, 10)
    assert _status(data) == 401  # read, parsed and refused as a login: no such user
    assert after > 2


def test_an_idle_connection_is_closed_opened_or_kept_alive(quick: Server) -> None:
    with quick.connect() as sock:  # never sends anything
        data, after = _read_until_closed(sock, 8)
    assert data == b""
    assert after < 4
    with quick.connect() as sock:  # one request, then silence on the kept-alive connection
        sock.sendall(HEALTH)
        data, after = _read_until_closed(sock, 8)
    assert _status(data) == 200
    assert after < 4


def test_connections_beyond_the_cap_are_answered_503_at_once(capped: Server) -> None:
    held = [capped.connect() for _ in range(3)]
    try:
        time.sleep(0.3)
        refused = []
        for _ in range(40):
            with capped.connect() as sock:
                sock.sendall(HEALTH)
                data, after = _read_until_closed(sock, 5)
                refused.append((data, after))
        for data, after in refused:
            assert _status(data) == 503
            assert re.search(rb"\r\nretry-after: \d+\r\n", data.lower())
            assert after < 3
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert _ask(capped) == 200  # room again


def test_refused_and_timed_out_connections_are_logged_once_each_never_a_traceback(
    quick: Server, capped: Server
) -> None:
    test_connections_beyond_the_cap_are_answered_503_at_once(capped)
    test_a_client_trickling_its_headers_is_answered_408_and_dropped(quick)
    test_a_body_trickled_slower_than_the_rate_is_answered_408_and_dropped(quick)
    for server, line in (
        (capped, "connections refused with 503"),
        (quick, "connections closed with 408: request headers"),
        (quick, "connections closed with 408: request body"),
    ):
        log = server.stderr()
        assert "Traceback" not in log
        assert 1 <= log.count(line) <= 2, log  # about 80 events each (two within a minute: one line)


def test_rate_limited_log_counts_what_it_does_not_print(caplog: pytest.LogCaptureFixture) -> None:
    events = RateLimitedLog(logging.getLogger("test.limits"), interval=3600)
    with caplog.at_level(logging.WARNING, "test.limits"):
        for _ in range(1000):
            events.warning("refused", "refused")
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == "refused [1 since the last such line; at most one every 3600 s]"
    events.interval = 0
    with caplog.at_level(logging.WARNING, "test.limits"):
        events.warning("refused", "refused")
    assert caplog.records[-1].getMessage().startswith("refused [1000 since the last such line")


def test_the_cap_is_lowered_to_fit_the_open_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from decidua.entrypoints.http import server

    monkeypatch.setattr(server, "open_file_limit", lambda wanted: 1024)
    lowered = effective_limits(ServerLimits(5000, 10, 5))
    assert lowered.max_connections + server.max_lingering(lowered.max_connections) + server.RESERVED_FILES <= 1024
    assert lowered.max_connections > 600
    monkeypatch.setattr(server, "open_file_limit", lambda wanted: 100_000)
    assert effective_limits(ServerLimits(5000, 10, 5)).max_connections == 5000
