"""Reading HAProxy's CLI answers: `show stat` (CSV: each frontend's, backend's and server's
counters and state) and the master's `show proc` (the reload counter). Pure, so the parsing is
tested on real answers without a process."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass


@dataclass(frozen=True)
class StatRow:
    proxy: str  # pxname: fe_<route> or be_<route>
    server: str  # svname: FRONTEND, BACKEND or a server's name
    address: str  # a server's host:port ("" for FRONTEND/BACKEND rows)
    status: str  # OPEN, UP, DOWN, MAINT, "no check"...
    sessions_now: int  # scur
    sessions_total: int  # stot
    bytes_in: int  # bin: from the client (frontend) / sent to the server (backend)
    bytes_out: int  # bout

    @property
    def up(self) -> bool:
        return self.status.startswith("UP")


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def normal_address(address: str) -> str:
    """host:port with an IPv6 host unbracketed, so ours and HAProxy's spellings compare."""
    host, _, port = address.rpartition(":")
    return f"{host.strip('[]')}:{port}"


def parse_stat(text: str) -> list[StatRow]:
    """`show stat` CSV -> rows (an answer without the header line gives none)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        return []
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:], *lines[1:]])))
    rows = []
    for row in reader:
        if not row.get("pxname") or not row.get("svname"):
            continue
        rows.append(StatRow(
            proxy=row["pxname"], server=row["svname"], address=row.get("addr") or "",
            status=row.get("status") or "", sessions_now=_int(row.get("scur")),
            sessions_total=_int(row.get("stot")), bytes_in=_int(row.get("bin")),
            bytes_out=_int(row.get("bout"))))
    return rows


@dataclass(frozen=True)
class ProcInfo:
    reloads: int  # the master's reloads so far
    failed: int  # of which failed (the old workers kept serving)
    workers: int  # worker lines listed


def parse_proc(text: str) -> ProcInfo | None:
    """The master's `show proc` answer -> its reload counters; None if there is no master line.
    The master's line reads `PID  master  RELOADS [failed: N]  UPTIME  VERSION`."""
    reloads = failed = workers = 0
    found = False
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or line.startswith("#"):
            continue
        if fields[1] == "master":
            found = True
            reloads = _int(fields[2])
            if "[failed:" in line:
                failed = _int(line.split("[failed:", 1)[1].split("]", 1)[0].strip())
        elif fields[1] == "worker":
            workers += 1
    return ProcInfo(reloads, failed, workers) if found else None
