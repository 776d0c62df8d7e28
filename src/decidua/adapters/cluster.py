"""The batch engine and the research statistics on a Dask cluster: the same Polars code, run per partition on
the workers.

Requires the ``cluster`` extra (``pip install 'decidua[cluster]'``). Each partition (a range of rows of the input
file) is read by a worker with Polars exactly as the local engine reads the file and run through the local engine
itself (:func:`decidua.adapters.batchio.run_local`: one streaming query); the partitions' results and rejects come
back to the client as Polars frames (no pandas in between), in input order, and are written atomically like
local results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from decidua.adapters.batchio import (
    BatchResult,
    FileRun,
    output_kind,
    row_count,
    run_local,
    scan_input,
    write_outputs,
)
from decidua.core.errors import InputError
from decidua.engines.batch import DEFAULT_KEY, plan_layout, summary
from decidua.engines.research.source import Query, Transform, add_up
from decidua.knowledge.loader import KnowledgeBase

MIN_PARTITION_ROWS = 100_000  # below this a partition costs more to schedule than to assess


def _partition(
    spec: tuple[int, int], path: str, kb: KnowledgeBase, key_column: str, allow_extra: bool
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One partition (rows ``offset`` to ``offset + length``) through the local engine: (results, rejects)."""
    offset, length = spec
    result = run_local(scan_input(Path(path)).slice(offset, length), kb, key_column, allow_extra)
    return result.results, result.rejects


def partition_specs(total: int, threads: int, partition_rows: int | None = None) -> list[tuple[int, int]]:
    """(offset, length) of each partition of ``total`` rows: ``partition_rows`` each, or by default two per
    worker thread (so that every worker has work while another finishes), at least :data:`MIN_PARTITION_ROWS`."""
    rows = partition_rows or max(MIN_PARTITION_ROWS, math.ceil(total / max(2 * threads, 1)))
    return [(offset, rows) for offset in range(0, max(total, 1), rows)]


@contextmanager
def _cluster(scheduler: str | None) -> Iterator[Any]:
    """A Dask client of the cluster at ``scheduler``, or of a local cluster of two workers (threads of this
    process) when ``None``; closed, with the local cluster, however the block ends."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the cluster extra is installed in the test environment
        raise InputError("the dask engine needs the cluster extra: pip install 'decidua[cluster]'") from None
    cluster = None if scheduler else LocalCluster(n_workers=2, threads_per_worker=1, processes=False)
    try:
        try:
            client = Client(scheduler or cluster)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot reach the Dask cluster: {exc}") from None
        with client:
            yield client
    finally:
        if cluster is not None:
            cluster.close()


def _partitions(
    client: Any, path: Path, kb: KnowledgeBase, key: str, allow_extra: bool, partition_rows: int | None
) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Every partition's (results, rejects), in input order, as the workers finish them (all are under way at
    once; each is released once handed over, so that the client holds only those finished ahead of their turn)."""
    total = row_count(scan_input(path))
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    futures = client.map(
        # (not key=: client.map's own keyword, the tasks' names)
        _partition,
        partition_specs(total, threads, partition_rows),
        path=str(path.resolve()),
        kb=kb,
        key_column=key,
        allow_extra=allow_extra,
        pure=False,
    )
    for future in futures:
        yield future.result()
        future.release()


def run_dask(
    path: Path,
    kb: KnowledgeBase,
    scheduler: str | None,
    key: str = DEFAULT_KEY,
    allow_extra: bool = False,
    partition_rows: int | None = None,
) -> BatchResult:
    """Run the engine on a cluster (``scheduler`` address, or a local cluster of two workers when ``None``), into
    the client's memory. The workers must see ``path`` (a shared file system or object store path), as with any
    Dask reader.

    Raises
    ------
    InputError
        The cluster extra missing, a cluster that cannot be reached, or an input the engine cannot process.
    """
    layout = plan_layout(scan_input(path).collect_schema().names(), key, allow_extra)  # fail before shipping work
    with _cluster(scheduler) as client:
        parts = list(_partitions(client, path, kb, key, allow_extra, partition_rows))
    results = pl.concat([done for done, _ in parts], rechunk=False)
    rejects = pl.concat([bad for _, bad in parts], rechunk=False)
    return BatchResult(results, rejects, layout)


def run_dask_to_files(
    path: Path,
    kb: KnowledgeBase,
    output: Path,
    scheduler: str | None,
    key: str = DEFAULT_KEY,
    allow_extra: bool = False,
    partition_rows: int | None = None,
    *,
    inputs: Iterable[Path] = (),
) -> FileRun:
    """Run the engine on a cluster (:func:`run_dask`) into ``output`` and its rejects file, written by the client
    with Polars (every core encoding) and committed together like a local run
    (:func:`decidua.adapters.batchio.write_outputs`).

    Writing each partition as it comes back (pyarrow's Parquet writer) kept less in memory but was slower: the
    client's single-threaded encoding then competes with the workers for the same cores.

    Raises
    ------
    InputError
        As :func:`run_dask`, and as :func:`decidua.adapters.batchio.run_folder` for the output.
    """
    output_kind(output)
    result = run_dask(path, kb, scheduler, key, allow_extra, partition_rows)
    write_outputs(result.results, result.rejects, output, inputs=inputs)
    counts = {str(row.pop("finding")): row for row in summary(result.results, kb)}
    return FileRun(counts, result.results.height, result.rejects.height, result.layout)


# --- research statistics (decidua cohort --engine dask) ---------------------------------------------------------


def _aggregate_partition(
    spec: tuple[int, int], path: str, steps: tuple[Transform, ...], query: Query
) -> Any:  # pandas.DataFrame
    """One partition's partial table: the rows read with Polars as the local source reads them, the transforms
    applied, the query run."""
    offset, length = spec
    rows = scan_input(Path(path)).slice(offset, length)
    for step in steps:
        rows = step(rows)
    return query(rows).collect().to_pandas()


@dataclass(frozen=True)
class DaskSource:
    """A cohort file read by the workers of a Dask cluster, partition by partition (``research.source.Source``).

    The workers must see ``path`` (a shared file system or object store path), as with any Dask reader. Each
    query's partial tables come back to the client, where they are added up (:func:`add_up`).
    """

    path: Path
    scheduler: str | None = None  # None: a local cluster of two workers
    partition_rows: int = 1_000_000
    steps: tuple[Transform, ...] = ()

    def schema(self) -> pl.LazyFrame:
        rows = scan_input(self.path).head(0)
        for step in self.steps:
            rows = step(rows)
        return rows

    def transform(self, step: Transform, *, heavy: bool = False) -> DaskSource:
        return DaskSource(self.path, self.scheduler, self.partition_rows, (*self.steps, step))

    def aggregate(self, query: Query, keys: Sequence[str], *, chunked: bool = False) -> pl.DataFrame:
        try:
            import dask.dataframe as dd
            from dask.distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - the cluster extra is installed in the test environment
            raise InputError("the dask engine needs the cluster extra: pip install 'decidua[cluster]'") from None
        total = row_count(scan_input(self.path))
        specs = [(offset, self.partition_rows) for offset in range(0, max(total, 1), self.partition_rows)]
        meta = query(self.schema()).collect().to_pandas()
        cluster = None if self.scheduler else LocalCluster(n_workers=2, threads_per_worker=1, processes=False)
        try:
            with Client(self.scheduler or cluster) as client:
                parts = dd.from_map(
                    _aggregate_partition, specs, path=str(self.path.resolve()), steps=self.steps, query=query, meta=meta
                )
                pdf = client.compute(parts).result()
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"cannot read the cohort: {exc}") from None
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {self.scheduler}: cannot reach the Dask cluster: {exc}") from None
        finally:
            if cluster is not None:
                cluster.close()
        return add_up([pl.from_pandas(pdf)], keys)
