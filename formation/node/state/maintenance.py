"""Checks over the whole database: rebuild the views from the log, verify every stored op.
Both stream the log (a cursor, not a list), so memory stays flat for millions of ops."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from formation.node.state import views
from formation.node.state.op import OpError, decode
from formation.node.state.verify import check_one

if TYPE_CHECKING:
    from formation.node.state.replica import Replica


def rebuild(replica: Replica) -> dict[str, Any]:
    """Recomputes every view from the log; reports whether they equal the incremental ones."""
    db = replica.db
    before = views.snapshot(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        views.clear(db)
        registers: views.Registers = {}
        for (raw,) in db.execute("SELECT raw FROM ops ORDER BY ord"):
            replica.replay_effects(decode(raw), registers)
            if len(registers) > 100_000:
                _write_registers(replica, registers)
        _write_registers(replica, registers)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    after = views.snapshot(db)
    differing = sorted(name for name in before if before[name] != after[name])
    return {"ops": replica.count, "equal": not differing, "differing": differing}


def _write_registers(replica: Replica, registers: views.Registers) -> None:
    for slot, (_order, value, op) in registers.items():
        views.apply_effects(replica.db, op, [(*slot, value)])
    registers.clear()


def verify(replica: Replica) -> list[str]:
    """Re-checks every stored op: encoding, id, signature, and that each parent is stored
    before it. Returns one line per fault."""
    db = replica.db
    faults: list[str] = []
    for ord_, op_id, raw in db.execute("SELECT ord, id, raw FROM ops ORDER BY ord"):
        where = f"op #{ord_} {op_id.hex()[:16]}"
        checked = check_one(raw)
        if isinstance(checked, OpError):
            faults.append(f"{where}: {checked}")
            continue
        if checked.id != op_id:
            faults.append(f"{where}: stored id differs from its hash")
        for dep in checked.deps:
            row = db.execute("SELECT ord FROM ops WHERE id=?", (dep,)).fetchone()
            if row is None or row[0] >= ord_:
                faults.append(f"{where}: parent {dep.hex()[:16]} missing or stored after it")
    for (head,) in db.execute("SELECT id FROM heads"):
        if db.execute("SELECT 1 FROM ops WHERE id=?", (head,)).fetchone() is None:
            faults.append(f"head {head.hex()[:16]}: not in the log")
    return faults
