"""Files in and out of the batch engine: CSV, Parquet and Excel inputs; Parquet or CSV outputs, written atomically.

The shell around :mod:`decidua.engines.batch`: it scans the input lazily, runs the engine chunk by chunk (so that
a progress bar can advance on long runs), and writes the results and the rejects next to their final names
before renaming them into place, so an interrupted run leaves no partial output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from decidua.core.errors import InputError
from decidua.engines.batch import DEFAULT_KEY, Layout, assess_lazy, plan_layout, prepare, summary
from decidua.knowledge.loader import KnowledgeBase

NULL_VALUES = ["", "NA", "N/A", "NaN", "null", "NULL", "None"]
INPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel", ".xls": "excel"}
OUTPUT_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_CHUNK_ROWS = 500_000  # bounds memory (about 0.6 GB per run); larger chunks are not faster


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


def _chunks(
    frame: pl.LazyFrame, kb: KnowledgeBase, layout: Layout, chunk_rows: int
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame, int]]:
    """(results, rejects, rows done so far) for each chunk of ``frame``."""
    total = row_count(frame)
    for offset in range(0, max(total, 1), chunk_rows):
        valid, rejected = prepare(frame.slice(offset, chunk_rows).collect(), layout)
        done, bad = pl.collect_all([assess_lazy(valid, kb, layout.key), rejected])
        yield done, bad, min(offset + chunk_rows, total)


def run_local(
    frame: pl.LazyFrame,
    kb: KnowledgeBase,
    key: str = DEFAULT_KEY,
    allow_extra: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> BatchResult:
    """Run the Polars engine over ``frame`` chunk by chunk, in memory; ``on_chunk(rows_done)`` reports progress."""
    try:
        layout = plan_layout(frame.collect_schema().names(), key, allow_extra)
        results: list[pl.DataFrame] = []
        rejects: list[pl.DataFrame] = []
        for done, bad, rows_done in _chunks(frame, kb, layout, chunk_rows):
            results.append(done)
            rejects.append(bad)
            if on_chunk is not None:
                on_chunk(rows_done)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"cannot process the input: {exc}") from None
    return BatchResult(pl.concat(results, rechunk=False), pl.concat(rejects), layout)


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
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> FileRun:
    """Run chunk by chunk, spilling each chunk to a part file, then stream the parts into ``output`` and its
    rejects file. Memory stays bounded by one chunk; nothing appears under the final names until the end."""
    kind = output_kind(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    parts = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".parts", dir=output.parent))
    counts: dict[str, dict[str, int]] = {}
    assessed = rejected = 0
    try:
        layout = plan_layout(frame.collect_schema().names(), key, allow_extra)
        for i, (done, bad, rows_done) in enumerate(_chunks(frame, kb, layout, chunk_rows)):
            # Arrow IPC parts: written and read back without encoding, so the final file is encoded once.
            done.write_ipc(parts / f"results-{i:06d}.arrow", compression="lz4")
            bad.write_ipc(parts / f"rejects-{i:06d}.arrow", compression="lz4")
            assessed += done.height
            rejected += bad.height
            for row in summary(done, kb):
                name = str(row.pop("finding"))
                bucket = counts.setdefault(name, dict.fromkeys(row, 0))
                for status, n in row.items():
                    bucket[status] += n
            if on_chunk is not None:
                on_chunk(rows_done)
        for name, final in (("rejects", rejects_path(output)), ("results", output)):
            scan = pl.scan_ipc(sorted(parts.glob(f"{name}-*.arrow")))
            with atomic_path(final) as tmp:
                if kind == "parquet":
                    scan.sink_parquet(tmp)
                else:
                    scan.sink_csv(tmp)
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"cannot process the input: {exc}") from None
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return FileRun(
        {f: {k: v for k, v in c.items() if k != "finding"} for f, c in counts.items()}, assessed, rejected, layout
    )


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
    """A temporary path beside ``final`` that replaces it only if the block completes.

    The file gets the permissions a new file gets (the umask), not the temporary file's 0600.

    Raises
    ------
    InputError
        As :func:`check_output`, or when the directory cannot be written.
    """
    check_output(final, inputs=inputs)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    except OSError as exc:
        raise InputError(f"{final}: cannot write there: {exc.strerror or exc}") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, final)
    finally:
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
