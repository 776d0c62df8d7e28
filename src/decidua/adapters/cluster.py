"""The batch engine and the research statistics on a Dask cluster: the same Polars code, run per partition on
the workers.

Requires the ``cluster`` extra (``pip install 'decidua[cluster]'``). The input is read by Dask (CSV as text,
Parquet as typed), each partition is converted to Polars and run through exactly the functions the local engine
uses (:func:`decidua.engines.batch.prepare` and :func:`~decidua.engines.batch.assess_lazy`), and the results come
back to the client, where they are written atomically like local results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from decidua.adapters.batchio import BatchResult, row_count, scan_input
from decidua.core.errors import InputError
from decidua.engines.batch import DEFAULT_KEY, REASON, assess_lazy, output_columns, plan_layout, prepare
from decidua.engines.columnar import STATUS_DTYPE
from decidua.engines.research.source import Query, Transform, add_up
from decidua.knowledge.loader import KnowledgeBase


def _partition(
    spec: tuple[int, int], path: str, kb: KnowledgeBase, key: str, allow_extra: bool
) -> Any:  # pandas.DataFrame: Dask partitions are pandas frames
    """One partition (rows ``offset`` to ``offset + length``): read with Polars exactly as the local engine reads
    the file, assess, and hand back results and rejects in one frame, told apart by ``reason``."""
    offset, length = spec
    frame = scan_input(Path(path)).slice(offset, length).collect()
    layout = plan_layout(frame.columns, key, allow_extra)
    valid, rejected = prepare(frame, layout)
    done, bad = pl.collect_all([assess_lazy(valid, kb, key), rejected])
    both = pl.concat([done.with_columns(pl.lit(None, pl.String).alias(REASON)), bad], how="diagonal")
    return both.select(
        pl.col(key), *(pl.col(c).cast(pl.String) for c in output_columns(kb)), pl.col(REASON)
    ).to_pandas()


def run_dask(
    path: Path,
    kb: KnowledgeBase,
    scheduler: str | None,
    key: str = DEFAULT_KEY,
    allow_extra: bool = False,
    partition_rows: int = 1_000_000,
) -> BatchResult:
    """Run the engine on a cluster (``scheduler`` address, or a local cluster when ``None``).

    The workers must see ``path`` (a shared file system or object store path), as with any Dask reader.
    """
    try:
        import dask.dataframe as dd
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the cluster extra is installed in the test environment
        raise InputError("the dask engine needs the cluster extra: pip install 'decidua[cluster]'") from None
    frame = scan_input(path)
    layout = plan_layout(frame.collect_schema().names(), key, allow_extra)  # fail fast, before any work is shipped
    total = row_count(frame)
    specs = [(offset, partition_rows) for offset in range(0, max(total, 1), partition_rows)]
    columns = [key, *output_columns(kb), REASON]
    meta = pd_meta(columns)
    cluster = None if scheduler else LocalCluster(n_workers=2, threads_per_worker=1, processes=False)
    try:
        with Client(scheduler or cluster) as client:
            parts = dd.from_map(
                _partition, specs, path=str(path.resolve()), kb=kb, key=key, allow_extra=allow_extra, meta=meta
            )
            pdf = client.compute(parts).result()
    finally:
        if cluster is not None:
            cluster.close()
    out = pl.from_pandas(pdf)
    results = out.filter(pl.col(REASON).is_null()).drop(REASON)
    results = results.with_columns(
        *(pl.col(c).cast(STATUS_DTYPE) for c in output_columns(kb) if c != "rpl_losses_counted"),
        pl.col("rpl_losses_counted").cast(pl.Int64),
    )
    rejects = out.filter(pl.col(REASON).is_not_null()).select(key, REASON)
    return BatchResult(results, rejects, layout)


def pd_meta(columns: list[str]) -> Any:
    """An empty pandas frame of text columns: the shape Dask is told each partition has."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})


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
