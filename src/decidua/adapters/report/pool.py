"""PDF rendering in a bounded pool of worker processes, so that reports cannot starve the rest of a server.

WeasyPrint's layout is CPU-bound Python (about 1.5 s a report): rendered in the server's threads, a burst of
report downloads holds the interpreter lock and every thread the server has, and a health check waits behind
them. Here the HTML is rendered in the calling thread (a tenth of the time) and WeasyPrint runs in ``workers``
separate processes; at most ``queue`` more reports wait for a worker, and a request beyond that is refused at
once with :class:`PdfBusy` (the web application answers 503 with ``Retry-After``) before any work is done.

A report not rendered within ``timeout`` seconds of being handed to the pool (its wait in the queue included;
WeasyPrint caught in a layout it cannot finish) is given up with :class:`PdfTimedOut` (503): the pool's worker
processes are killed, the reports they were rendering are tried once more in a new pool, and the next report
finds the pool whole again.

The pool is a resource of the process, like the plotting lock (:data:`decidua.adapters.report.plots.PLOT_LOCK`):
:func:`pdf_pool` gives the one pool of a given size, started on first use (worker processes are spawned fresh,
not forked from a server with threads) and stopped when the process exits.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from multiprocessing.connection import wait

from decidua.adapters.report import PdfUnavailable, html_to_pdf, pdf_engine

__all__ = ["PdfBusy", "PdfPool", "PdfTimedOut", "pdf_pool"]

FIRST_GUESS_SECONDS = 2.0  # the time a report takes, until the pool has timed one
MAX_RETRY_AFTER = 300
RENDER_TIMEOUT_SECONDS = 120.0  # a report takes about 1.5 s; one taking 80 times that is not coming


class PdfBusy(PdfUnavailable):
    """Every PDF worker is busy and the queue is full: try again after ``retry_after`` seconds."""

    audit_outcome = "busy"  # the audit trail's outcome of a read refused for want of capacity

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy rendering other reports; try again in {retry_after} s")
        self.retry_after = retry_after


class PdfTimedOut(PdfUnavailable):
    """A report's rendering did not end within the pool's timeout: its worker was stopped."""

    audit_outcome = "error"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the report could not be rendered within {seconds:g} s; the server has stopped trying")
        self.seconds = seconds


def _worker_start() -> None:
    """In each worker: leave Ctrl+C to the server (which stops the pool), end with the server however it ends
    (killed, it cannot stop the pool), keep WeasyPrint's warnings about CSS it does not know (the plots' SVG) out
    of the server's log, and load WeasyPrint before the first report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:

        def exit_with_parent() -> None:
            wait([parent.sentinel])
            os._exit(0)

        threading.Thread(target=exit_with_parent, name="exit-with-server", daemon=True).start()
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with suppress(OSError, ImportError):  # a missing library is reported by html_to_pdf, with what to install
        import weasyprint  # noqa: F401  (imported, not used: loaded now, so that the first report does not wait)


def _ready() -> None:
    """Nothing: a task that makes the pool start a worker."""


class PdfPool:
    """``workers`` processes rendering PDFs, with at most ``queue`` reports waiting beyond those being rendered."""

    def __init__(self, workers: int, queue: int, timeout: float = RENDER_TIMEOUT_SECONDS) -> None:
        if workers < 1 or queue < 0 or timeout <= 0:
            raise ValueError(
                "a PDF pool needs at least one worker, a queue of 0 or more and a positive timeout "
                f"(got {workers}, {queue}, {timeout})"
            )
        self.workers = workers
        self.queue = queue
        self.timeout = timeout
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False  # shut down: no new workers
        self._seconds = FIRST_GUESS_SECONDS  # a moving average of the time a report takes in a worker

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise PdfUnavailable("the server is stopping: no more PDF reports")
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start
                )
            return self._executor

    def start(self) -> None:
        """Start the workers now (they load WeasyPrint), so that the first report does not wait for them."""
        pool = self._pool()
        for future in [pool.submit(_ready) for _ in range(self.workers)]:
            future.result()

    def retry_after(self) -> int:
        """Seconds until a refused request might find room: the time the queue takes to drain, roughly."""
        drain = self._seconds * (self.workers + self.queue) / self.workers
        return min(MAX_RETRY_AFTER, max(1, math.ceil(drain)))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A place among the reports being rendered or waiting; :class:`PdfBusy` at once when there is none."""
        if not self._slots.acquire(blocking=False):
            raise PdfBusy(self.retry_after())
        try:
            yield
        finally:
            self._slots.release()

    def render(self, html: Callable[[], str]) -> bytes:
        """The PDF of the document ``html()`` returns (called in this thread once a place is free).

        Raises
        ------
        PdfBusy
            When the workers are busy and the queue is full (nothing is rendered).
        PdfUnavailable
            When WeasyPrint cannot run (its system libraries are missing).
        """
        pdf_engine()  # the workers load the same libraries: when they are missing, say so before anything else
        with self.slot():
            document = html()
            started = time.monotonic()
            pdf = self.run(html_to_pdf, document)
            self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - started)
            return pdf

    def run(self, task: Callable[[str], bytes], document: str) -> bytes:
        """``task(document)`` in a worker (a place taken already), at most :attr:`timeout` seconds from being
        handed to the pool (waiting in its queue included: at most ``queue`` renderings of about 1.5 s).

        A pool that breaks under it (a worker killed, out of memory, or stopped for another report's timeout) is
        replaced and the task tried once more; an error of the task itself is raised as it is.

        Raises
        ------
        PdfTimedOut
            When it did not end in time (the pool's workers are then killed: a new pool starts on next use).
        PdfUnavailable
            When the pool broke twice, or is shut down (the server is stopping).
        """
        for _ in range(2):  # once more in a new pool if this one breaks
            executor = self._pool()
            try:
                future = executor.submit(task, document)
            except (BrokenProcessPool, RuntimeError):  # broken, or stopped by another thread since _pool()
                self._discard(executor)
                continue
            try:
                return future.result(timeout=self.timeout)
            except (BrokenProcessPool, CancelledError):
                self._discard(executor)
            except TimeoutError:
                self._discard(executor, kill=True)
                raise PdfTimedOut(self.timeout) from None
        raise PdfUnavailable("the PDF workers stopped while rendering this report; try again")

    def _discard(self, executor: ProcessPoolExecutor, *, kill: bool = False) -> None:
        """Stop using ``executor`` (the next report starts a new pool; another thread may have done so already).
        With ``kill`` its processes are killed: a worker busy with a rendering cannot be told to stop."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
        if kill:
            stop = getattr(executor, "kill_workers", None)  # Python 3.14 (gh-128041)
            if stop is not None:
                stop()
            else:  # before it: the executor's own table of its processes, which kill_workers walks
                for process in list((getattr(executor, "_processes", None) or {}).values()):
                    with suppress(OSError, AttributeError, ValueError):
                        process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Stop the workers (waiting for the reports being rendered); the pool starts no new ones after."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_POOLS: dict[tuple[int, int], PdfPool] = {}
_POOLS_LOCK = threading.Lock()


def pdf_pool(workers: int, queue: int) -> PdfPool:
    """The process's PDF pool of this size (made on first call; its workers start on first use)."""
    with _POOLS_LOCK:
        pool = _POOLS.get((workers, queue))
        if pool is None:
            pool = _POOLS[(workers, queue)] = PdfPool(workers, queue)
        return pool
