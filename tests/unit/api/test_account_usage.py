"""What an account uses, one definition for the node, the CLI and the console: its live
instances' figures summed; deleted ones, other accounts' and node-owned work count nothing;
odd values in a spec (not integers) count 0 instead of failing the whole view."""

from __future__ import annotations

from formation.api.account_usage import FIGURES, account_usage, usage_by_account

SPEC = {"vcpus": 2, "memory_mb": 1024, "disk_gb": 10}


def test_usage_sums_the_accounts_live_instances() -> None:
    view = [{"key": "a", "account": "alice", "spec": SPEC},
            {"key": "b", "account": "alice", "spec": {**SPEC, "vcpus": 1}},
            {"key": "c", "account": "alice", "spec": SPEC, "desired": "deleted"},
            {"key": "d", "account": "bob", "spec": SPEC},
            {"key": "e", "spec": SPEC}]
    assert account_usage(view, "alice") == {"vcpus": 3, "memory_mb": 2048, "disk_gb": 20,
                                            "instances": 2}
    assert account_usage(view, "carol") == dict.fromkeys(FIGURES, 0)
    assert set(usage_by_account(view)) == {"alice", "bob"}
    assert usage_by_account(view)["bob"]["instances"] == 1


def test_a_malformed_spec_counts_nothing_rather_than_failing() -> None:
    view = [{"key": "a", "account": "alice", "spec": {"vcpus": "2", "memory_mb": True}},
            {"key": "b", "account": "alice"}, {"key": "c", "account": 7}]
    assert account_usage(view, "alice") == {"vcpus": 0, "memory_mb": 0, "disk_gb": 0,
                                            "instances": 2}
    assert usage_by_account(view) == {"alice": account_usage(view, "alice")}


def test_usage_by_account_agrees_with_one_account_s_usage() -> None:
    view = [{"key": str(n), "account": f"a{n % 7}", "spec": {**SPEC, "vcpus": n % 3},
             **({"desired": "deleted"} if n % 5 == 0 else {})} for n in range(200)]
    every = usage_by_account(view)
    assert list(every) == sorted(every)
    for name in (f"a{n}" for n in range(7)):
        assert every[name] == account_usage(view, name)
