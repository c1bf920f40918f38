"""The image store on a real filesystem: import hashes what it copies, a blob appears under its
final name only whole and verified, and bytes that do not match their digest are never kept."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from formation.node.state.image_manifest import image_digest, parts_problem
from formation.node.vmm.images.blob import BlobMismatch, TooLarge
from formation.node.vmm.images.store import ImageError, ImageStore


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {"kernel": write(tmp_path / "vmlinuz", b"K" * 5000 + os.urandom(100)),
            "initrd": write(tmp_path / "initrd.img", os.urandom(70_000)),
            "disk": write(tmp_path / "root.img", os.urandom(3 * (1 << 20) + 17))}


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    s = ImageStore(tmp_path / "images")
    s.open()
    return s


async def test_import_returns_the_image_add_payload_and_copies_every_part(files, store):
    seen: list[tuple[str, int]] = []
    payload = await store.import_files("web", files["kernel"], files["initrd"], files["disk"],
                                       "console=ttyS0 quiet",
                                       progress=lambda part, n: seen.append((part, n)))
    assert set(payload) == {"digest", "name", "size", "parts", "cmdline"}
    assert parts_problem(payload["parts"]) is None
    for part, path in files.items():
        data = path.read_bytes()
        assert payload["parts"][part] == {"digest": hashlib.sha256(data).hexdigest(),
                                          "size": len(data)}
    assert payload["digest"] == image_digest(payload["parts"], "console=ttyS0 quiet")
    assert payload["size"] == sum(p.stat().st_size for p in files.values())
    assert store.has(payload)
    paths = store.paths(payload)
    assert {k: v.read_bytes() for k, v in paths.items()} == {
        k: v.read_bytes() for k, v in files.items()}
    assert ("disk", files["disk"].stat().st_size) in seen  # progress reached the end
    assert list(store.tmp.iterdir()) == []  # no temp file left behind
    assert await store.verify(payload) == []


async def test_an_image_without_initrd_or_disk_has_only_a_kernel(files, store):
    payload = await store.import_files("tiny", files["kernel"])
    assert list(payload["parts"]) == ["kernel"]
    assert payload["cmdline"] == "console=ttyS0"


async def test_two_images_share_a_blob(files, store, tmp_path):
    a = await store.import_files("a", files["kernel"], files["initrd"])
    b = await store.import_files("b", files["kernel"], cmdline="console=hvc0")
    assert a["parts"]["kernel"] == b["parts"]["kernel"] and a["digest"] != b["digest"]
    assert store.usage()[0] == 2


async def test_a_missing_or_unreadable_file_names_its_part(files, store, tmp_path):
    with pytest.raises(ImageError, match=r"^disk \(--disk\): .*nope.img does not exist") as e:
        await store.import_files("x", files["kernel"], disk=tmp_path / "nope.img")
    assert e.value.field == "disk"
    assert store.usage() == (0, 0)  # checked before anything was copied
    with pytest.raises(ImageError, match="is not a regular file"):
        await store.import_files("x", tmp_path)
    if os.geteuid() != 0:
        locked = write(tmp_path / "locked", b"x")
        locked.chmod(0)
        with pytest.raises(ImageError, match=r"initrd \(--initrd\): .* not readable"):
            await store.import_files("x", files["kernel"], initrd=locked)


def test_a_half_written_blob_is_never_under_its_final_name(store):
    data = os.urandom(200_000)
    digest = hashlib.sha256(data).hexdigest()
    writer = store.new_writer(len(data))
    writer.write(data[:100_000])
    # mid-transfer: the store does not have it, and nothing is under a blob name
    assert not store.has_blob(digest) and list(store.blobs.iterdir()) == []
    assert writer.path.parent == store.tmp
    writer.write(data[100_000:])
    assert writer.commit(digest, len(data)) == digest
    assert store.has_blob(digest, len(data)) and not writer.path.exists()


def test_a_crash_leaves_no_temp_file_after_reopening(store):
    writer = store.new_writer()
    writer.write(b"partial")
    assert list(store.tmp.iterdir())
    store.open()  # the next start of the node
    assert list(store.tmp.iterdir()) == [] and list(store.blobs.iterdir()) == []


def test_bytes_that_do_not_match_their_digest_are_refused_and_deleted(store):
    good = os.urandom(4096)
    digest = hashlib.sha256(good).hexdigest()
    writer = store.new_writer(len(good))
    writer.write(good[:-1] + bytes([good[-1] ^ 1]))  # one bit flipped
    with pytest.raises(BlobMismatch):
        writer.commit(digest, len(good))
    assert not store.has_blob(digest)
    assert list(store.tmp.iterdir()) == [] and list(store.blobs.iterdir()) == []


def test_more_than_the_declared_size_is_refused(store):
    writer = store.new_writer(10)
    writer.write(b"0123456789")
    with pytest.raises(TooLarge):
        writer.write(b"!")
    writer.abort()
    assert list(store.tmp.iterdir()) == []


async def test_verify_finds_and_drops_a_blob_altered_on_disk(files, store):
    payload = await store.import_files("web", files["kernel"], files["initrd"])
    blob = store.paths(payload)["initrd"]
    blob.chmod(0o644)
    blob.write_bytes(b"evil" + blob.read_bytes()[4:])
    assert await store.verify(payload) == ["initrd"]
    assert not store.has(payload) and store.has_blob(payload["parts"]["kernel"]["digest"])


@pytest.mark.parametrize("digest", ["../../etc/passwd", "A" * 64, "a" * 63, "", "a" * 64 + "/x"])
def test_a_digest_that_is_not_64_hex_names_no_path(store, digest):
    with pytest.raises(ImageError, match="digest: expected a SHA-256"):
        store.blob_path(digest)
    assert not store.has_blob(digest)


async def test_an_image_whose_digest_does_not_match_its_parts_is_refused(files, store):
    """The rule refusing such an image.add is vm-state's; the store refuses it on its own too,
    so a forged manifest never names blobs to boot from."""
    payload = await store.import_files("web", files["kernel"], files["initrd"])
    store.paths(payload)  # the real one is fine
    forged = {**payload, "cmdline": "console=ttyS0 init=/bin/evil"}
    with pytest.raises(ImageError, match="its digest is not the digest of its parts"):
        store.paths(forged)
    swapped = {**payload, "parts": {"kernel": payload["parts"]["initrd"]}}
    with pytest.raises(ImageError, match=r"forged or corrupted image\.add"):
        store.paths(swapped)
    with pytest.raises(ImageError, match="parts: unknown part 'bios'"):
        store.paths({**payload, "parts": {**payload["parts"], "bios": {"digest": "a" * 64,
                                                                        "size": 1}}})
