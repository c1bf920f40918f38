"""Which table columns a terminal of a given width shows. Every column has a priority; when
they do not all fit, the least useful go first (ids and byte counts before member state and
round-trip time), and the ones kept stay in their usual order. Pure, so tested without a
terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.widgets import DataTable

CELL_PADDING = 2  # a DataTable pads each cell by one column on both sides
SCROLLBAR = 2  # room for a vertical scrollbar


def fit_columns(columns: Sequence[tuple[str, int]], priority: Sequence[str],
                width: int) -> list[int]:
    """Indexes (in display order) of the columns to show in `width` terminal columns.
    `priority` names every column, most important first. The first column always shows."""
    budget = width - SCROLLBAR
    widths = {title: w + CELL_PADDING for title, w in columns}
    if set(priority) != set(widths):
        raise ValueError("priority must name every column exactly once")
    kept: set[str] = set()
    used = 0
    for title in priority:
        if not kept or used + widths[title] <= budget:
            kept.add(title)
            used += widths[title]
    return [i for i, (title, _) in enumerate(columns) if title in kept]


def refit_table(table: DataTable[object], columns: Sequence[tuple[str, int]],
                priority: Sequence[str], width: int, shown: list[int]) -> list[int] | None:
    """Give `table` the columns that fit `width`; returns the new column indexes, or None when
    they are `shown` already (the table is then left alone, so its rows and cursor stay)."""
    wanted = fit_columns(columns, priority, width)
    if wanted == shown:
        return None
    table.clear(columns=True)
    for i in wanted:
        title, w = columns[i]
        table.add_column(title, width=w, key=title)
    return wanted
