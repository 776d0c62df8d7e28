"""Files in and out of the batch engine: CSV, Parquet and Excel inputs; Parquet or CSV outputs, written atomically.

The shell around :mod:`decidua.engines.batch`: it scans the input lazily, runs the engine chunk by chunk (so that
a progress bar can advance on long runs), and writes the results and the rejects into a hidden work folder
beside the output before renaming them into place, so an interrupted run leaves no partial output.

The two outputs of a run are one unit (:func:`commit_outputs`):

* the results file is the commit point: the earlier results are removed first, the new rejects renamed into
  place, the new results renamed into place last. A results file is therefore never beside the rejects of
  another run; a run stopped between the renames (a window of microseconds) leaves no results file, which says
  it did not finish.
* a rejects file is always written, empty (with its columns) when no row was rejected, so an earlier run's
  rejects never stay looking current.
* the work folder (``.NAME.xxxxxxxx.parts``: the chunk files and the two outputs before their renames) is
  removed on every exit path (the CLI turns SIGTERM, SIGHUP and SIGINT into an exit through the same cleanup);
  while its run lives it holds an advisory lock on it, so the next run can tell a killed run's leftovers (no
  lock: removed) from a run still writing the same output (locked: refused).
* temporary files of :func:`atomic_path` (``.NAME.xxxxxxxx.part``) left by a killed process are removed by the
  next write of the same file.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from decidua.core.errors import InputError
from decidua.engines.batch import (
    DEFAULT_KEY,
    REASON,
    Layout,
    assess_lazy,
    counts_lazy,
    plan_layout,
    prepare,
    summary_of,
)
from decidua.knowledge.loader import KnowledgeBase

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: leftovers are then recognised by age
    fcntl = None  # type: ignore[assignment]

NULL_VALUES = ["", "NA", "N/A", "NaN", "null", "NULL", "None"]
INPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel", ".xls": "excel"}
OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Rows per morsel of the streaming engine: memory holds a few morsels of every column the query makes (inputs,
# features, statuses); at Polars' own size (a Parquet row group) a 10 M-row run peaks near 1 GB, at 75,000 rows
# near 0.8 GB for 2 % more CPU.
DEFAULT_MORSEL_ROWS = 75_000


def input_kind(path: Path) -> str:
    kind = INPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown input format {path.suffix!r}; allowed: {', '.join(sorted(INPUT_SUFFIXES))}")
    return kind


def output_kind(path: Path) -> str:
    kind = OUTPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"{path}: unknown output format {path.suffix!r}; allowed: {', '.join(sorted(OUTPUT_SUFFIXES))}"
        )
    return kind


def scan_input(path: Path) -> pl.LazyFrame:
    """A lazy frame over the input file. CSV cells are read as text and typed by the engine (so a bad cell is
    rejected with its row, not the whole file)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    kind = input_kind(path)
    try:
        if kind == "csv":
            return pl.scan_csv(path, infer_schema=False, null_values=NULL_VALUES)
        if kind == "parquet":
            return pl.scan_parquet(path)
        return pl.read_excel(path, infer_schema_length=0).lazy()
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read {kind}: {exc}") from None


def row_count(frame: pl.LazyFrame) -> int:
    return int(frame.select(pl.len()).collect().item())


@dataclass(frozen=True, slots=True)
class BatchResult:
    results: pl.DataFrame
    rejects: pl.DataFrame
    layout: Layout


@contextmanager
def _morsels(chunk_rows: int | None) -> Iterator[None]:
    """Polars' streaming engine run with ``chunk_rows`` rows per morsel (:data:`DEFAULT_MORSEL_ROWS` when
    ``None``), without
    Python's cycle collector: the run makes few Python objects, and a collection would walk every object of the
    process (the knowledge base's many) again and again, a few per cent of the run."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        with pl.Config(streaming_chunk_size=chunk_rows or DEFAULT_MORSEL_ROWS):
            yield
    finally:
        if collecting:
            gc.enable()


class _Stopped(Exception):
    """Raised inside a running query to end it (the run was stopped, or its progress callback failed)."""


class _Run:
    """One run of the engine as a single streaming query: its progress (``on_chunk(rows_read)``, told morsel by
    morsel from Polars' threads), the number of its rejected rows (told by the query as it meets them) and its
    stop. The query runs in a thread of its own while the main
    thread waits for it, so that a signal (Ctrl+C, SIGTERM: turned into exceptions by the CLI) is handled at once:
    the query is then ended at its next morsel, and the exception goes on once it has."""

    def __init__(self, on_chunk: Callable[[int], None] | None) -> None:
        self.on_chunk = on_chunk
        self.rows = 0
        self.rejected = 0
        self.stop = False
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def tick(self, keys: pl.Series) -> pl.Series:
        with self.lock:
            if self.stop:
                raise _Stopped
            self.rows += len(keys)
            rows = self.rows
        if self.on_chunk is not None:
            try:
                self.on_chunk(rows)
            except BaseException as exc:  # a callback's error (or KeyboardInterrupt) ends the run, re-raised below
                self.error = exc
                raise _Stopped from None
        return keys

    def reject(self, rows: int) -> None:
        with self.lock:
            self.rejected += rows

    def results(self, frame: pl.LazyFrame, kb: KnowledgeBase, layout: Layout) -> pl.LazyFrame:
        """The results of ``frame``: one query that reads the input once, calls :meth:`tick` for each morsel read
        and :meth:`reject` with the number of rejected rows it meets."""
        dtype = frame.collect_schema()[layout.key]
        ticking = frame.with_columns(pl.col(layout.key).map_batches(self.tick, dtype, is_elementwise=True))
        valid, _ = prepare(ticking, layout, None, self.reject)
        return assess_lazy(valid, kb, layout.key)

    def rejects(self, frame: pl.LazyFrame, layout: Layout) -> pl.LazyFrame:
        """The rejected rows of ``frame``, in input order, with their reasons: the input prepared again, only when
        the run met some."""
        if not self.rejected:
            return pl.LazyFrame(schema={layout.key: pl.String, REASON: pl.String})
        _, rejected = prepare(frame, layout)
        return rejected

    def collect(self, queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
        """``pl.collect_all(queries)`` on the streaming engine, in a thread, the main thread staying responsive."""
        out: list[pl.DataFrame] = []
        failed: list[BaseException] = []

        def work() -> None:
            try:
                out.extend(pl.collect_all(queries, engine="streaming"))
            except BaseException as exc:
                failed.append(exc)

        worker = threading.Thread(target=work, name="decidua-batch", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.1)
        except BaseException:
            with self.lock:
                self.stop = True
            worker.join()
            raise
        if self.error is not None:
            raise self.error
        if failed:
            raise failed[0]
        return out


def run_local(
    frame: pl.LazyFrame,
    kb: KnowledgeBase,
    key: str = DEFAULT_KEY,
    allow_extra: bool = False,
    chunk_rows: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> BatchResult:
    """Run the Polars engine over ``frame`` (one streaming query), into memory; ``on_chunk(rows_read)`` reports
    progress."""
    run = _Run(on_chunk)
    try:
        layout = plan_layout(frame.collect_schema().names(), key, allow_extra)
        with _morsels(chunk_rows):
            (results,) = run.collect([run.results(frame, kb, layout)])
            rejects = run.rejects(frame, layout).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"cannot process the input: {exc}") from None
    return BatchResult(results, rejects, layout)


@dataclass(frozen=True, slots=True)
class FileRun:
    """What a run written to files produced: counts per finding and status, rows, the layout."""

    counts: dict[str, dict[str, int]]
    assessed: int
    rejected: int
    layout: Layout


def run_to_files(
    frame: pl.LazyFrame,
    kb: KnowledgeBase,
    output: Path,
    key: str = DEFAULT_KEY,
    allow_extra: bool = False,
    chunk_rows: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
    *,
    inputs: Iterable[Path] = (),
) -> FileRun:
    """Run the engine as one streaming query from the input into ``output`` and its rejects file, committed
    together (:func:`commit_outputs`): Polars reads, assesses and writes morsel by morsel on every core; the
    rejected rows, if any, are read again and written with their reasons by a second query. Memory
    stays bounded by the morsels in flight; nothing appears under the final names until the end, and the work
    folder is removed on every exit.

    Raises
    ------
    InputError
        An output that cannot be written (:func:`check_output`), another run writing the same output, or an input
        the engine cannot process.
    """
    kind = output_kind(output)

    def sink(query: pl.LazyFrame, path: Path) -> pl.LazyFrame:
        return query.sink_parquet(path, lazy=True) if kind == "parquet" else query.sink_csv(path, lazy=True)

    with run_folder(output, inputs=inputs) as parts:
        try:
            layout = plan_layout(frame.collect_schema().names(), key, allow_extra)
            run = _Run(on_chunk)
            with _morsels(chunk_rows):
                run.collect([sink(run.results(frame, kb, layout), parts / "results")])
                run.collect([sink(run.rejects(frame, layout), parts / "rejects")])
            # the summary's counts from the file written (a few status columns: cheaper than counting in the query)
            written = (
                pl.scan_parquet(parts / "results")
                if kind == "parquet"
                else pl.scan_csv(parts / "results", infer_schema=False)
            )
            counts = counts_lazy(written, kb).collect(engine="streaming")
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"cannot process the input: {exc}") from None
        commit_outputs(parts, output)
    table = {str(row.pop("finding")): row for row in summary_of(counts, kb)}
    assessed = sum(table["rpl"].values())  # every assessed row has an rpl status
    return FileRun(table, assessed, run.rejected, layout)


def write_outputs(results: pl.DataFrame, rejects: pl.DataFrame, output: Path, *, inputs: Iterable[Path] = ()) -> None:
    """Write a run computed in memory (the Dask engine's) as ``output`` and its rejects file, committed together."""
    kind = output_kind(output)
    with run_folder(output, inputs=inputs) as folder:
        for name, frame in (("rejects", rejects), ("results", results)):
            if kind == "parquet":
                frame.write_parquet(folder / name)
            else:
                frame.write_csv(folder / name)
        commit_outputs(folder, output)


# The names tempfile gives (8 characters from [a-z0-9_]) after the final file's name: what a run leaves when killed.
_RANDOM = r"[a-z0-9_]{8}"
_STALE_AFTER_SECONDS = 24 * 3600  # without advisory locks (Windows), a leftover is recognised by its age


def _lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive advisory lock on ``path`` (a file or a folder); ``None`` when
    another process holds it. The lock goes with the descriptor: closed, or the process killed."""
    if fcntl is None:  # pragma: no cover
        return -1
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int) -> None:
    if fd >= 0:
        os.close(fd)


def _is_abandoned(path: Path) -> bool:
    """True if the temporary ``path`` belongs to no living process (a killed run's), and False while its writer
    holds its lock."""
    if fcntl is None:  # pragma: no cover
        return time.time() - path.stat().st_mtime > _STALE_AFTER_SECONDS
    fd = _lock(path)
    if fd is None:
        return False
    _unlock(fd)
    return True


def remove_leftovers(*finals: Path) -> None:
    """Remove what killed processes left beside each of ``finals``: work folders ``.NAME.xxxxxxxx.parts`` and
    temporary files ``.NAME.xxxxxxxx.part`` that no living process holds. Names are matched whole, so a user's
    file that merely starts the same way is never touched.

    Raises
    ------
    InputError
        When a batch run still holds a work folder of one of ``finals`` (it is writing the same output).
    """
    for final in finals:
        if not final.parent.is_dir():
            continue
        pattern = re.compile(re.escape(f".{final.name}.") + _RANDOM + r"\.(part|parts)")
        for path in final.parent.iterdir():
            match = pattern.fullmatch(path.name)
            if match is None:
                continue
            try:
                abandoned = _is_abandoned(path)
            except OSError:  # removed meanwhile, or not ours to open
                continue
            if not abandoned:
                if match.group(1) == "parts":
                    raise InputError(f"{final}: another run is writing it; wait for it to end or choose another output")
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


@contextmanager
def run_folder(output: Path, *, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """The hidden work folder of one run beside ``output`` (so that renames out of it stay on one file system),
    locked while the block runs and removed when it ends, however it ends. Leftovers of killed runs writing the
    same output are removed first.

    Raises
    ------
    InputError
        As :func:`check_output` for the output or its rejects file, when another run is writing the same output,
        or when the folder cannot be made.
    """
    rejects = rejects_path(output)
    check_output(output, inputs=inputs)
    check_output(rejects, inputs=inputs)
    remove_leftovers(output, rejects)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".parts", dir=output.parent))
    except OSError as exc:
        raise InputError(f"{output}: cannot write there: {exc.strerror or exc}") from None
    try:
        lock = _lock(folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if lock is not None:
            _unlock(lock)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - a file system without fsync on directories
        pass
    finally:
        os.close(fd)


def commit_outputs(folder: Path, output: Path) -> None:
    """Move ``folder/results`` and ``folder/rejects`` (complete files) into place as ``output`` and its rejects
    file, results last: the earlier results go first, so that at no moment does a results file stand beside the
    rejects of another run."""
    staged = folder / "results", folder / "rejects"
    for path in staged:
        os.chmod(path, 0o666 & ~_umask())
        _fsync(path)  # the data is on disk before any name points at it
    output.unlink(missing_ok=True)
    os.replace(folder / "rejects", rejects_path(output))
    os.replace(folder / "results", output)
    _fsync(output.parent)


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux), else by setting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_output(final: Path, *, inputs: Iterable[Path] = ()) -> None:
    """Refuse an output path before anything is written: a directory, something that is not a regular file (a
    FIFO, a device: it would be replaced by a file), one of ``inputs``, or a parent that is not a directory.

    Raises
    ------
    InputError
        Naming the path and what is wrong with it.
    """
    if final.is_dir():
        raise InputError(f"{final}: is a directory; give a file name to write")
    if final.exists() and not final.is_file():
        raise InputError(f"{final}: exists and is not a regular file (a device, a FIFO); give a file name to write")
    if any(final.resolve() == Path(p).resolve() for p in inputs):
        raise InputError(f"{final}: is also an input; write the result to another file")
    ancestor = final.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK):
        raise InputError(f"{final}: cannot write there ({ancestor} is not a writable directory)")


@contextmanager
def atomic_path(final: Path, *, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """A temporary path beside ``final`` that replaces it only if the block completes; temporaries of ``final``
    left by killed processes are removed first (:func:`remove_leftovers`).

    The file gets the permissions a new file gets (the umask), not the temporary file's 0600.

    Raises
    ------
    InputError
        As :func:`check_output`, or when the directory cannot be written.
    """
    check_output(final, inputs=inputs)
    remove_leftovers(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    except OSError as exc:
        raise InputError(f"{final}: cannot write there: {exc.strerror or exc}") from None
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # ours alone: a later write of the same file sees it is not a leftover
        os.chmod(tmp, 0o666 & ~_umask())
        yield Path(tmp)
        os.replace(tmp, final)
    finally:
        os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_frame(frame: pl.DataFrame, path: Path, *, inputs: Iterable[Path] = ()) -> None:
    """Write ``frame`` atomically as Parquet or CSV (by suffix)."""
    kind = output_kind(path)
    with atomic_path(path, inputs=inputs) as tmp:
        if kind == "parquet":
            frame.write_parquet(tmp)
        else:
            frame.write_csv(tmp)


def rejects_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}.rejects{output.suffix}")
