"""The reconciler's small file helpers, on real files: the serial tail a failed instance
carries (bounded for its status op, keeping a panic's cause), reading the log in chunks from
an offset, and machine.json round-tripping the spec a restarted service adopts by."""

from __future__ import annotations

from pathlib import Path

from formation.node.state.instance_spec import MAX_TAIL_LINE, MAX_TAIL_LINES
from formation.node.vmm import serial, workdir
from formation.node.vmm.machine import MachineSpec


def test_tail_is_bounded_and_keeps_the_panic_line(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    lines = [f"[ {i}] boot line {i}" for i in range(50)]
    lines[10] = "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"
    lines += ["x" * 500] + [f"[trace] frame {i}" for i in range(30)]
    log.write_text("\r\n".join(lines) + "\r\n")
    tail = serial.tail_lines(log)
    assert len(tail) == serial.TAIL_LINES <= MAX_TAIL_LINES
    assert all(len(line) <= serial.TAIL_LINE_CHARS <= MAX_TAIL_LINE for line in tail)
    assert tail[0].startswith("Kernel panic")
    assert tail[-1] == "[trace] frame 29"
    assert serial.tail_lines(tmp_path / "missing.log") == []


async def test_chunks_from_an_offset_and_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes(b"a" * 40000)
    got = [(offset, len(data)) async for offset, data in serial.chunks(log, 0, 0, False)]
    assert got == [(0, 16384), (16384, 16384), (32768, 7232)]
    tail = [(offset, data) async for offset, data in serial.chunks(log, None, 10, False)]
    assert tail == [(39990, b"a" * 10)]


def test_machine_json_round_trips_the_spec(tmp_path: Path) -> None:
    instance = "ab" * 32
    wd = workdir.path_for(tmp_path, instance)
    wd.mkdir()
    spec = MachineSpec(instance=instance, name="web", vcpus=2, memory_mb=1024,
                       kernel=tmp_path / "k", workdir=wd, serial_log=wd / workdir.SERIAL,
                       initrd=tmp_path / "i", disk=wd / workdir.DISK, gpus=("0000:01:00.0",))
    workdir.write_meta(spec, {"boot": 3, "placement": "cd" * 32})
    read = workdir.read_meta(wd)
    assert read == (spec, {"boot": 3, "placement": "cd" * 32})
    assert workdir.list_instances(tmp_path) == {instance}
    assert len(str(wd / "console.sock")) < len(str(tmp_path / instance))
    (wd / workdir.META).write_text("{not json")
    assert workdir.read_meta(wd) is None
    assert workdir.list_instances(tmp_path) == set()
