"""When a guest's serial log got its first byte and each marker, as the file system reports it
(inotify), for bench/vm.py: the same watcher times a VM the node runs and a bare QEMU command,
so neither number depends on how often someone looks. Wall-clock times (time.time()), to be
compared with what the store records (status ops' since_ms, the op log's times).

A watch on a directory also follows the directories created in it (the node makes one per
instance in its run directory), so the serial log is watched from before its first write."""

from __future__ import annotations

import ctypes
import os
import select
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

IN_MODIFY = 0x002
IN_CREATE = 0x100
IN_ISDIR = 0x40000000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class SerialLog:
    """What the watcher saw of one serial log."""

    path: Path
    first_byte: float | None = None
    markers: dict[str, float] = field(default_factory=dict)
    missed_start: bool = False  # it already had bytes when its watch began
    _offset: int = 0
    _tail: bytes = b""


class SerialWatch:
    """Watches `root` (a directory) and its new subdirectories for files named `name`; records
    the first byte of each and when each of `markers` first appears in it. Use as a context
    manager; read `logs` (path -> SerialLog) or wait with `wait_marker`."""

    def __init__(self, root: Path, name: str, markers: tuple[str, ...]) -> None:
        self.root, self.name, self.markers = root, name, markers
        self.logs: dict[Path, SerialLog] = {}
        self._dirs: dict[int, Path] = {}
        self._changed = threading.Condition()
        self._fd = -1
        self._stop_r, self._stop_w = -1, -1
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SerialWatch:
        self._fd = _libc.inotify_init1(IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._stop_r, self._stop_w = os.pipe()
        self._add_dir(self.root)
        self._thread = threading.Thread(target=self._run, name="serial-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        os.write(self._stop_w, b"x")
        if self._thread is not None:
            self._thread.join(10)
        for fd in (self._fd, self._stop_r, self._stop_w):
            os.close(fd)

    def _add_dir(self, directory: Path) -> None:
        wd = _libc.inotify_add_watch(self._fd, os.fsencode(directory), IN_CREATE | IN_MODIFY)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
        self._dirs[wd] = directory
        # What appeared before the watch: a directory made meanwhile, a log already written.
        for entry in directory.iterdir():
            if entry.is_dir() and entry not in self._dirs.values():
                self._add_dir(entry)
            elif entry.name == self.name:
                self._read(entry, time.time(), before_watch=True)

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            now = time.time()
            if self._stop_r in ready:
                return
            data = os.read(self._fd, 65536)
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                raw = data[offset + _EVENT.size: offset + _EVENT.size + length]
                offset += _EVENT.size + length
                directory = self._dirs.get(wd)
                if directory is None:
                    continue
                path = directory / raw.rstrip(b"\0").decode()
                if mask & IN_ISDIR and mask & IN_CREATE:
                    self._add_dir(path)
                elif path.name == self.name:
                    self._read(path, now)

    def _read(self, path: Path, now: float, before_watch: bool = False) -> None:
        log = self.logs.get(path)
        if log is None:
            log = self.logs[path] = SerialLog(path)
        try:
            with path.open("rb") as f:
                f.seek(log._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        if not chunk:
            return
        with self._changed:
            if log.first_byte is None:
                log.first_byte = now
                log.missed_start = before_watch
            log._offset += len(chunk)
            text = log._tail + chunk
            for marker in self.markers:
                if marker not in log.markers and marker.encode() in text:
                    log.markers[marker] = now
            longest = max((len(m) for m in self.markers), default=1)
            log._tail = text[-longest:]
            self._changed.notify_all()

    def watches(self, directory: Path) -> bool:
        """Whether `directory` (under the root) is watched yet."""
        return directory in list(self._dirs.values())

    def wait_marker(self, marker: str, timeout_s: float, path: Path | None = None) -> SerialLog:
        """The log (the one at `path`, or any) once `marker` appeared in it."""
        return self._wait(lambda log: marker in log.markers, timeout_s, path, repr(marker))

    def wait_first_byte(self, path: Path, timeout_s: float) -> SerialLog:
        """The log at `path` once it has had a byte."""
        return self._wait(lambda log: log.first_byte is not None, timeout_s, path,
                          "first byte")

    def _wait(self, done: Callable[[SerialLog], bool], timeout_s: float, path: Path | None,
              what: str) -> SerialLog:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for log in self.logs.values():
                    if done(log) and (path is None or log.path == path):
                        return log
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {what} on a serial log under {self.root} "
                                       f"within {timeout_s:g} s")
                self._changed.wait(left)
