"""Taking applied grant uses back out of the views when a revocation that did not see them
arrives (grant_void.py), without rebuilding every view from the log.

Rebuilding the views replays the whole log (11 s for 50,000 ops in bench/tenants.py) for what is
usually one use. What a use can have changed is narrow, because a grant only covers an
account's own instances and images:
- an `instance.update`/`instance.delete` use wrote the instance's `spec`, `desired`, `force`,
  `move`, its `boot` counter or its tombstone. Only the account's instance ops write those, and
  they are all in the tenant_ops index under that instance: those fields are cleared and these
  ops replayed (void ones are skipped by the replay, as always);
- an `instance.create` use made the instance: it never existed, so every row of it goes (the
  ops about it are void too);
- an `image.add` use added one OR-set element: it goes.
An `image.remove` use removed an element for good (the OR-set keeps no record of who removed it),
so undoing it takes the full rebuild: `unapply` says so. Tested equal to the full rebuild."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

from formation.node.state import views
from formation.node.state.op import Op, decode

_USE_FIELDS = ("spec", "desired", "force", "move")


def unapply(db: sqlite3.Connection, uses: Iterable[Op],
            replay: Callable[[Op, views.Registers], None]) -> bool:
    """Removes the effects of `uses` (now void) from the views; False when only a full
    rebuild can (then nothing was changed). `replay` is the replica's own effects fold."""
    uses = list(uses)
    if any(u.kind == "image.remove" for u in uses):
        return False
    gone = {u.id.hex() for u in uses if u.kind == "instance.create"}
    touched = {u.payload["instance"] for u in uses
               if u.kind in ("instance.update", "instance.delete")} - gone
    for use in uses:
        if use.kind == "image.add":
            db.execute("DELETE FROM orset WHERE tag=?", (use.id,))
    for key in gone:
        for table in ("lww", "counters", "tombstones", "history"):
            db.execute(f"DELETE FROM {table} WHERE coll='instances' AND key=?", (key,))
    registers: views.Registers = {}
    for key in sorted(touched):
        db.execute(f"DELETE FROM lww WHERE coll='instances' AND key=? AND field IN "
                   f"({','.join('?' * len(_USE_FIELDS))})", (key, *_USE_FIELDS))
        db.execute("DELETE FROM counters WHERE coll='instances' AND key=? AND field='boot'",
                   (key,))
        db.execute("DELETE FROM tombstones WHERE coll='instances' AND key=?", (key,))
        rows = db.execute("SELECT o.raw FROM tenant_ops t JOIN ops o ON o.id = t.op "
                          "WHERE t.instance=? ORDER BY o.ord", (bytes.fromhex(key),))
        for (raw,) in rows.fetchall():
            replay(decode(raw), registers)
    for slot, (_order, value, op) in registers.items():
        views.apply_effects(db, op, [(*slot, value)])
    return True
