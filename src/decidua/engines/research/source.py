"""Where a cohort's rows are, and how the research statistics reach them: only through small tables of counts
and sums that add up across parts of the cohort.

Every statistic in :mod:`decidua.engines.research` is computed on such a table (values with their counts,
covariate patterns with events and trials, sums of missing cells). A :class:`Source` builds it: the local one runs
the Polars query over the whole file (Polars streams it), or chunk by chunk when the query itself needs bounded
memory (the scan runs the batch engine); the Dask one (:mod:`decidua.adapters.cluster`) runs the same query on
each partition on the workers and adds the partial tables up by their keys. The statistics never see a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from decidua.core.errors import InputError

Query = Callable[[pl.LazyFrame], pl.LazyFrame]  # rows -> a table whose non-key columns add up across parts
Transform = Callable[[pl.LazyFrame], pl.LazyFrame]  # rows -> rows (row by row: casts, filters, derived columns)


class Source(Protocol):
    def schema(self) -> pl.LazyFrame:
        """An empty frame with the columns the rows have (after the transforms), to build expressions on."""
        ...

    def transform(self, step: Transform, *, heavy: bool = False) -> Source:
        """The same rows with ``step`` applied to each part (it must work row by row). ``heavy``: the step
        materialises its rows (the batch engine's features), so every query then runs part by part."""
        ...

    def aggregate(self, query: Query, keys: Sequence[str], *, chunked: bool = False) -> pl.DataFrame:
        """``query`` over every part, the partial tables added up by ``keys`` (every other column summed).
        ``chunked``: bound memory by running the query on slices of the rows (the local source)."""
        ...


def add_up(parts: Sequence[pl.DataFrame], keys: Sequence[str]) -> pl.DataFrame:
    """Partial tables of the same columns added up by ``keys`` (every other column summed)."""
    if not parts:
        raise InputError("the cohort has no rows")
    frame = pl.concat(parts, how="vertical_relaxed")
    if not keys:
        return frame.sum()
    others = [c for c in frame.columns if c not in keys]
    return frame.group_by(list(keys)).agg(pl.col(c).sum() for c in others)


@dataclass(frozen=True)
class LocalSource:
    """The rows of a lazy frame on this machine."""

    frame: pl.LazyFrame
    chunk_rows: int = 1_000_000
    steps: tuple[Transform, ...] = field(default=())
    heavy: bool = False  # a step materialises rows: run queries slice by slice

    def _rows(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        for step in self.steps:
            frame = step(frame)
        return frame

    def schema(self) -> pl.LazyFrame:
        return self._rows(self.frame.head(0))

    def transform(self, step: Transform, *, heavy: bool = False) -> LocalSource:
        return LocalSource(self.frame, self.chunk_rows, (*self.steps, step), self.heavy or heavy)

    def aggregate(self, query: Query, keys: Sequence[str], *, chunked: bool = False) -> pl.DataFrame:
        try:
            if not (chunked or self.heavy):
                return query(self._rows(self.frame)).collect()
            total = int(self.frame.select(pl.len()).collect().item())
            parts = [
                query(self._rows(self.frame.slice(offset, self.chunk_rows))).collect()
                for offset in range(0, max(total, 1), self.chunk_rows)
            ]
            return add_up(parts, keys)
        except pl.exceptions.PolarsError as exc:
            raise InputError(f"cannot read the cohort: {exc}") from None


__all__ = ["LocalSource", "Query", "Source", "Transform", "add_up"]
