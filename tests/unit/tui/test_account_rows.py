"""The Accounts screen's text: columns that fit 80 columns, keys short, used/quota figures with
a mark past a quota, the quota form's fields parsed with one line per problem, and the
`account.set` payload a quota change writes (keys and roles kept)."""

from __future__ import annotations

from formation.tui.account_rows import (
    COLUMNS,
    EMPTY_TEXT,
    PRIORITY,
    AccountRow,
    account_rows,
    count_text,
    keys_text,
    parse_quota,
    quota_payload,
    role_note,
    selected_text,
)
from formation.tui.column_fit import fit_columns

ALICE_KEYS = ["aa" * 32, "bb" * 32, "cc" * 32]
SPEC = {"vcpus": 2, "memory_mb": 1536, "disk_gb": 10}


def rows() -> list[AccountRow]:
    accounts = [{"key": "bob", "keys": ["dd" * 32], "roles": ["admin"]},
                {"key": "alice", "keys": ALICE_KEYS, "roles": ["user"],
                 "quotas": {"vcpus": 3, "instances": 1, "bogus": 4}}]
    instances = [{"key": "1", "account": "alice", "spec": SPEC},
                 {"key": "2", "account": "alice", "spec": SPEC},
                 {"key": "3", "spec": SPEC}]
    return account_rows(accounts, instances)


def test_at_80_columns_the_figures_stay_and_disk_goes() -> None:
    shown = [COLUMNS[i][0] for i in fit_columns(COLUMNS, PRIORITY, 80)]
    assert shown == ["account", "roles", "keys", "vCPU", "memory", "instances"]
    assert len(fit_columns(COLUMNS, PRIORITY, 120)) == len(COLUMNS)


def test_rows_by_name_with_usage_and_quotas() -> None:
    alice, bob = rows()
    assert (alice.name, bob.name) == ("alice", "bob")
    assert alice.quotas == {"vcpus": 3, "instances": 1}  # what is no quota is not shown
    assert alice.cells() == ("alice", "user", "aaaaaaaa +2", "4/3!", "3G", "20G",
                             "2/1!")
    assert bob.cells() == ("bob", "admin", "dddddddd", "0", "0M", "0G", "0")
    assert all(len(c) <= w for r in (alice, bob)
               for c, (_, w) in zip(r.cells(), COLUMNS, strict=True))


def test_texts() -> None:
    alice, bob = rows()
    assert count_text([]) == EMPTY_TEXT and "formation account create" in EMPTY_TEXT
    assert count_text([alice, bob]).startswith("2 account(s), 1 admin")
    assert keys_text([]) == "-" and keys_text(ALICE_KEYS[:2]) == "aaaaaaaa bbbbbbbb"
    assert selected_text(alice) == ("alice: 3 key(s) aaaaaaaa…, bbbbbbbb…, cccccccc… · "
                                    "vcpus=3 instances=1")
    assert selected_text(bob).endswith("no quotas") and selected_text(None) == ""


def test_quota_fields_parse_or_say_what_was_expected() -> None:
    assert parse_quota("vcpus", "") is None and parse_quota("vcpus", " 8 ") == 8
    assert parse_quota("vcpus", "-1") == "vcpus: expected a whole number >= 0, or empty for no " \
                                         "limit"
    assert parse_quota("memory_mb", "9" * 20) == "memory_mb: expected at most 1099511627776"


def test_a_quota_change_keeps_keys_and_roles() -> None:
    alice, _bob = rows()
    assert quota_payload(alice, {"instances": 5, "vcpus": 2}) == {
        "name": "alice", "keys": ALICE_KEYS, "roles": ["user"],
        "quotas": {"vcpus": 2, "instances": 5}}
    assert "quotas" not in quota_payload(alice, {})  # every quota cleared


def test_the_role_line_says_why_changes_would_be_refused() -> None:
    assert role_note("admin", remote=False) == ""
    assert role_note(None, remote=False) == ""  # not known yet: the node's answer will say
    assert "not a network admin (role: node)" in role_note("node", remote=False)
    assert "attached to another node" in role_note("admin", remote=True)
