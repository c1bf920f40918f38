"""Reading a VM's serial log: the file the VMM appends the guest's output to. The reconciler
waits for the first byte after a boot (that is when an instance is Running), the API streams
chunks from an offset, and a failed instance carries its last lines. Reads are small and go
through a thread; the wait for the first byte polls the file's size, which costs one stat."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

FIRST_BYTE_POLL_S = 0.002  # Running is written within a few ms of the guest's first byte
FOLLOW_POLL_S = 0.1  # a person following the log does not see 100 ms
CHUNK = 16384
TAIL_LINES = 20
CAUSES = ("Kernel panic", "Attempted to kill init", "Unable to mount root")
TAIL_LINE_CHARS = 120  # a status op is at most 4 KiB: 20 lines of this and a reason fit


def size_of(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


async def wait_first_byte(path: Path, after: int, timeout_s: float,
                          gone: asyncio.Event | None = None) -> float | None:
    """The monotonic time the log first grew past `after` bytes; None on timeout or when
    `gone` is set (the VM exited first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if size_of(path) > after:
            return time.monotonic()
        if gone is not None and gone.is_set():
            return None
        await asyncio.sleep(FIRST_BYTE_POLL_S)
    return None


def _read(path: Path, offset: int, limit: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(limit)
    except OSError:
        return b""


def tail_lines(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last `lines` lines of the log, each cut to TAIL_LINE_CHARS (blocking: small read)."""
    size = size_of(path)
    raw = _read(path, max(0, size - 8192), 8192)
    text = raw.decode(errors="replace").replace("\r", "")
    found = [line[:TAIL_LINE_CHARS] for line in text.split("\n") if line.strip()]
    tail = found[-lines:]
    # a panic's stack trace pushes its cause out of the tail: keep the line that says why
    cause = next((line for line in reversed(found[:-lines]) if any(
        mark in line for mark in CAUSES)), None)
    return [cause, *tail[1:]] if cause is not None and len(tail) == lines else tail


async def chunks(path: Path, offset: int | None, tail_bytes: int,
                 follow: bool) -> AsyncIterator[tuple[int, bytes]]:
    """(offset, bytes) from `offset` (default: `tail_bytes` before the end) to the end, then,
    when following, as the guest writes more. A log that shrank (a new file) starts over."""
    start = offset if offset is not None else max(0, size_of(path) - tail_bytes)
    while True:
        data = await asyncio.to_thread(_read, path, start, CHUNK)
        if data:
            yield start, data
            start += len(data)
            continue
        if not follow:
            return
        if size_of(path) < start:
            start = 0
        await asyncio.sleep(FOLLOW_POLL_S)
