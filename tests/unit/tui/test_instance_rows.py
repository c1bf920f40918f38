"""The Instances screen's text: columns that fit 80 columns, long names cut, memory and uptime
short, the empty state saying how to get a first instance, the reason of a pending one."""

from __future__ import annotations

from datetime import UTC, datetime

from formation.api.vm_models import Instance, StatusChange
from formation.tui.column_fit import fit_columns
from formation.tui.instance_rows import (
    COLUMNS,
    EMPTY_TEXT,
    NODE_OWNED,
    PRIORITY,
    count_text,
    detail_text,
    filter_text,
    history_line,
    instance_cells,
    memory_text,
    next_owner,
    owned_by,
    owner_choices,
    owner_text,
    selected_text,
    truncate,
    uptime_text,
)


def instance(**changes) -> Instance:
    fields = {"id": "ab" * 32, "name": "web-1", "owner": "cd" * 32, "image": "ef" * 32,
              "image_name": "debian", "vcpus": 2, "memory_mb": 1536, "disk_gb": 10,
              "desired": "running", "state": "running", "node": "12" * 32,
              "node_name": "h1", "backend": "qemu", "uptime_s": 65.0}
    return Instance.model_validate(fields | changes)


def test_at_80_columns_state_owner_and_address_stay_and_uptime_and_vcpus_go() -> None:
    shown = [COLUMNS[i][0] for i in fit_columns(COLUMNS, PRIORITY, 80)]
    assert shown == ["name", "node", "state", "address", "memory", "owner"]
    assert [COLUMNS[i][0] for i in fit_columns(COLUMNS, PRIORITY, 120)] == \
        [title for title, _ in COLUMNS]


def test_a_row_has_every_column_and_no_cell_wider_than_it() -> None:
    long = instance(name="a" + "-very-long-name" * 4, node_name=None)
    cells = instance_cells(long)
    assert len(cells) == len(COLUMNS)
    assert all(len(c) <= w for c, (_, w) in zip(cells, COLUMNS, strict=True))
    assert cells[0].endswith("…") and cells[0].startswith("a-very-long")
    assert cells[1] == "12" * 6  # no node name: the start of its key


def test_cells_of_a_running_instance() -> None:
    assert instance_cells(instance(), elapsed_s=10) == ("web-1", "h1", "running", "-", "2",
                                                        "1.5G", "1m15s", "@cdcdcdcd")
    assert instance_cells(instance(address="10.42.3.2"))[3] == "10.42.3.2"


def test_truncate_keeps_what_fits() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcd", 3) == "ab…"


def test_memory_is_short() -> None:
    assert [memory_text(m) for m in (512, 1024, 1536, 262144)] == ["512M", "1G", "1.5G", "256G"]


def test_uptime_only_while_running() -> None:
    assert uptime_text(instance(state="stopped", uptime_s=None)) == "-"
    assert uptime_text(instance(state="booting", uptime_s=3.0)) == "-"
    assert uptime_text(instance(uptime_s=3600.0), elapsed_s=61) == "1h01m"


def test_the_empty_state_says_to_import_an_image_first() -> None:
    assert count_text([]) == EMPTY_TEXT
    assert "formation image import" in EMPTY_TEXT and "+" in EMPTY_TEXT


def test_the_count_names_the_running_ones_and_the_keys() -> None:
    text = count_text([instance(), instance(id="cd" * 32, state="pending", node=None)])
    assert text == "2 instance(s), 1 running · ↑↓ choose · enter details"


def test_a_pending_instance_says_why() -> None:
    pending = instance(state="pending", reason="no node has 2 vCPUs free", node=None)
    assert selected_text(pending) == "web-1: pending · no node has 2 vCPUs free"
    assert selected_text(None) == ""


def test_an_instance_not_as_desired_says_so() -> None:
    assert selected_text(instance(desired="stopped")) == "web-1: running (desired stopped)"
    assert selected_text(instance(state="stopped", uptime_s=None)) == \
        "web-1: stopped (desired running)"
    assert selected_text(instance(desired="stopped", state="stopped")) == "web-1: stopped"


def test_detail_fields() -> None:
    text = detail_text(instance(gpus=1, confidential="sev-snp", reason="resized"))
    assert "web-1" in text and "up 1m05s" in text and "image debian" in text
    assert "2 vCPU · 1.5G memory · 10 GB disk · 1 GPU · sev-snp" in text
    assert text.splitlines()[-1] == "reason: resized"
    assert "node not placed" in detail_text(instance(node=None, node_name=None))


def test_history_line() -> None:
    change = StatusChange(time=datetime(2026, 1, 1, tzinfo=UTC), state="failed",
                          reason="kernel panic")
    assert history_line(change, "12:00:00") == "12:00:00 failed · kernel panic"


def test_the_owner_is_the_account_or_the_node_that_wrote_it() -> None:
    assert owner_text(instance(account="alice")) == "alice"
    assert owner_text(instance(), {"cd" * 32: "h1"}) == "@h1"
    assert owner_text(instance()) == "@cdcdcdcd"  # its name not known: its key's start
    assert instance_cells(instance(account="a-long-account-name"))[-1] == "a-long-a…"
    assert "owner account alice" in detail_text(instance(account="alice"))


def test_the_owner_filter_cycles_all_then_each_account_then_nodes_then_all() -> None:
    mixed = [instance(account="bob"), instance(id="01" * 32), instance(account="alice")]
    choices = owner_choices(mixed, accounts=["carol", "bob"])
    assert choices == ["alice", "bob", "carol", NODE_OWNED]
    seen, current = [], None
    for _ in range(len(choices) + 1):
        current = next_owner(current, choices)
        seen.append(current)
    assert seen == ["alice", "bob", "carol", NODE_OWNED, None]
    assert next_owner("gone", choices) is None  # an account removed meanwhile: back to all
    assert next_owner(None, []) is None
    assert owner_choices([instance(account="bob")]) == ["bob"]  # no node-owned work: no entry


def test_the_filter_keeps_only_the_owner_s_instances() -> None:
    node_owned, alices = instance(), instance(account="alice")
    assert [owned_by(i, None) for i in (node_owned, alices)] == [True, True]
    assert [owned_by(i, "alice") for i in (node_owned, alices)] == [False, True]
    assert [owned_by(i, NODE_OWNED) for i in (node_owned, alices)] == [True, False]
    assert owned_by(instance(account="nodes"), NODE_OWNED) is False  # an account named nodes
    assert filter_text(None) == ""
    assert filter_text("alice") == "owner: account alice · f: next owner"
    assert "nodes" in filter_text(NODE_OWNED)
