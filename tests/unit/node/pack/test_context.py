"""The build context a remote caller uploads is hostile input: node/pack/context.py unpacks
only regular files and directories with relative names, within bounds in entries and bytes,
and what `pack build --node` packs is what it accepts."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path

import pytest

from formation.node.pack import context as ctx
from formation.node.pack.context import ContextError, pack_context, unpack_context


def tar_b64(entries: list[tuple[str, bytes]], mode: str = "w:gz") -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buffer.getvalue()).decode()


def test_pack_then_unpack_round_trips_regular_files_only(short_tmp: Path) -> None:
    src = short_tmp / "src"
    (src / "conf").mkdir(parents=True)
    (src / "Formfile").write_text("NAME web\n")
    (src / "conf" / "app.ini").write_text("[app]\n")
    (src / "link").symlink_to("/etc/passwd")
    unpacked = unpack_context(base64.b64encode(pack_context(src)).decode(), short_tmp / "out")
    assert (unpacked / "Formfile").read_text() == "NAME web\n"
    assert (unpacked / "conf" / "app.ini").read_text() == "[app]\n"
    assert not (unpacked / "link").exists()  # links are left out when packing


@pytest.mark.parametrize(("entries", "needle"), [
    ([("Formfile", b"NAME a\n"), ("a/../../x", b"")], "relative name"),
    ([("/abs", b"")], "relative name"),
    ([("other", b"")], "no Formfile at the top"),
])
def test_hostile_names_are_refused(short_tmp: Path, entries, needle) -> None:
    with pytest.raises(ContextError, match=needle):
        unpack_context(tar_b64(entries), short_tmp / "out")
    assert not (short_tmp / "x").exists()


def test_bounds_on_entries_and_unpacked_bytes(short_tmp: Path, monkeypatch) -> None:
    monkeypatch.setattr(ctx, "MAX_MEMBERS", 3)
    with pytest.raises(ContextError, match="more than 3 entries") as refused:
        unpack_context(tar_b64([(f"f{i}", b"") for i in range(4)]), short_tmp / "a")
    assert refused.value.status == 413
    monkeypatch.setattr(ctx, "MAX_UNPACKED_BYTES", 1000)
    zeros = tar_b64([("Formfile", b"NAME a\n"), ("big", bytes(2000))])  # gzip: tiny upload
    with pytest.raises(ContextError, match="MiB unpacked") as refused:
        unpack_context(zeros, short_tmp / "b")
    assert refused.value.status == 413 and not (short_tmp / "b" / "big").exists()


def test_garbage_is_one_line(short_tmp: Path) -> None:
    with pytest.raises(ContextError, match="expected base64"):
        unpack_context("%%%", short_tmp / "a")
    with pytest.raises(ContextError, match="not a readable tar"):
        unpack_context(base64.b64encode(b"not a tar at all").decode(), short_tmp / "a")
