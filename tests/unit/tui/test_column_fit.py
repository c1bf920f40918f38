"""Which peers-table columns a terminal width keeps: at 80 columns member state and round-trip
time stay and the id goes; wide enough, everything shows in its usual order."""

from __future__ import annotations

import pytest

from formation.tui.column_fit import fit_columns
from formation.tui.network_rows import COLUMNS, PRIORITY


def titles(width: int) -> list[str]:
    return [COLUMNS[i][0] for i in fit_columns(COLUMNS, PRIORITY, width)]


def test_at_80_columns_the_states_stay_and_the_id_goes() -> None:
    shown = titles(80)
    assert {"name", "member", "rtt", "mesh ip"} <= set(shown)
    assert "id" not in shown and "rx/tx" not in shown


def test_wide_enough_everything_shows_in_order() -> None:
    assert titles(400) == [title for title, _ in COLUMNS]


def test_the_first_priority_shows_even_when_nothing_fits() -> None:
    assert titles(5) == ["name"]


def test_a_priority_list_that_misses_a_column_is_a_bug() -> None:
    with pytest.raises(ValueError, match="every column"):
        fit_columns(COLUMNS, PRIORITY[:-1], 80)
