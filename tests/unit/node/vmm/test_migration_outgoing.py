"""When a source migrates (migration.is_outgoing): only to a claim that supersedes its own
placement, carries a listener, and that the owner's or an admin's move request names, live.
A member claiming with `incoming` unasked gets a takeover, never the guest's memory."""

from __future__ import annotations

from formation.node.vmm.migration import is_outgoing, parse_ports, wanted_move

MINE, THEIRS, OTHER = "aa" * 32, "bb" * 32, "cc" * 32
SOURCE_PLACEMENT = "11" * 32


def inst(**over) -> dict:
    base = {"key": "dd" * 32, "placement": THEIRS, "placement_op": "22" * 32,
            "placement_from": SOURCE_PLACEMENT, "incoming": "10.0.0.3:49152",
            "move": {"to": THEIRS, "mode": "live", "n": 1}}
    return {**base, **over}


def test_a_requested_live_move_from_our_placement_is_sent() -> None:
    assert is_outgoing(inst(), SOURCE_PLACEMENT)


def test_anything_else_is_not_sent() -> None:
    assert not is_outgoing(inst(), "33" * 32)  # superseded someone else's placement
    assert not is_outgoing(inst(), "")
    assert not is_outgoing(inst(incoming=None), SOURCE_PLACEMENT)  # a plain claim
    assert not is_outgoing(inst(move=None), SOURCE_PLACEMENT)  # nobody asked
    assert not is_outgoing(inst(move={"to": OTHER, "mode": "live", "n": 1}), SOURCE_PLACEMENT)
    assert not is_outgoing(inst(move={"to": THEIRS, "mode": "restart", "n": 1}),
                           SOURCE_PLACEMENT)
    moved_from = {"to": THEIRS, "mode": "live", "n": 2, "from": SOURCE_PLACEMENT}
    assert is_outgoing(inst(move=moved_from), SOURCE_PLACEMENT)
    assert not is_outgoing(inst(move={**moved_from, "from": "66" * 32}), SOURCE_PLACEMENT)


def test_the_target_acts_on_a_move_naming_it_while_held_elsewhere() -> None:
    asked = {"key": "dd" * 32, "placement": MINE, "move": {"to": THEIRS, "mode": "live", "n": 2}}
    assert wanted_move(asked, THEIRS) == asked["move"]
    assert wanted_move(asked, OTHER) is None
    assert wanted_move({**asked, "placement": THEIRS}, THEIRS) is None  # done already
    assert wanted_move({**asked, "placement": None}, THEIRS) is None  # not placed: no move
    # a request naming the placement it leaves is spent once that placement is gone
    pinned = {**asked, "placement_op": "44" * 32,
              "move": {"to": THEIRS, "mode": "live", "n": 3, "from": "44" * 32}}
    assert wanted_move(pinned, THEIRS) == pinned["move"]
    assert wanted_move({**pinned, "placement_op": "55" * 32}, THEIRS) is None
    assert parse_ports("49152-49215") == range(49152, 49216)
