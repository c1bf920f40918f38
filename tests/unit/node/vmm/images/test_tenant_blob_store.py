"""Tenant blob uploads on a real filesystem (node/vmm/images/tenant_blobs.py): the budgets hold
per key, per account and per node; an idle upload goes with its temp file; a stored blob no
image names is removed after the hour, one an image names is not; what waits survives a
restart."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

import pytest

from formation.node.vmm.images import tenant_blobs as tbm
from formation.node.vmm.images.store import ImageStore
from formation.node.vmm.images.tenant_blobs import BlobUploadError, TenantBlobs


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    s = ImageStore(tmp_path / "images")
    s.open()
    return s


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def upload(blobs: TenantBlobs, key: str, account: str, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    opened = await blobs.start(key, account, None, len(data), digest)
    assert opened is not None
    await blobs.chunk(key, opened.id, 0, b64(data))
    return digest


def temp_files(store: ImageStore) -> list[str]:
    return os.listdir(store.tmp)


async def test_a_stored_blob_no_image_names_is_removed_after_the_hour(store) -> None:
    clock = Clock()
    blobs = TenantBlobs(store, wall=clock)
    lonely = await upload(blobs, "k1", "alice", b"lonely")
    named = await upload(blobs, "k1", "alice", b"named")
    kept = await upload(blobs, "k1", "alice", b"kept by the node")
    assert blobs.account_bytes("alice") == len(b"lonely") + len(b"named") + 16
    assert await blobs.sweep({named}, set()) == []  # named: the image's now, not waiting
    assert set(blobs.waiting) == {lonely, kept}
    clock.now += tbm.UNREFERENCED_S - 1
    assert await blobs.sweep(set(), set()) == []
    clock.now += 2
    assert await blobs.sweep(set(), {kept}) == [lonely]
    assert not store.has_blob(lonely)
    assert store.has_blob(named) and store.has_blob(kept)
    assert blobs.waiting == {} and blobs.account_bytes("alice") == 0


async def test_what_waits_survives_a_restart(store) -> None:
    clock = Clock()
    digest = await upload(TenantBlobs(store, wall=clock), "k1", "alice", b"bytes")
    again = TenantBlobs(store, wall=clock)
    again.load()
    assert again.account_bytes("alice") == 5
    clock.now += tbm.UNREFERENCED_S + 1
    assert await again.sweep(set(), set()) == [digest]


async def test_budgets_per_account_per_key_and_per_node(store, monkeypatch) -> None:
    blobs = TenantBlobs(store)
    monkeypatch.setattr(tbm, "ACCOUNT_BYTES", 100)
    await upload(blobs, "k1", "alice", b"x" * 60)
    with pytest.raises(BlobUploadError) as over:
        await blobs.start("k2", "alice", None, 41, "ab" * 32)  # another key, same account
    assert over.value.status == 413 and str(over.value).startswith("size:")
    with pytest.raises(BlobUploadError) as quota:  # the account's disk quota is lower
        await blobs.start("k3", "bob", 10, 11, "ab" * 32)
    assert quota.value.status == 413
    for n in range(tbm.MAX_OPEN_PER_KEY):
        assert await blobs.start("k4", "carol", None, 10, f"{n:064x}") is not None
    with pytest.raises(BlobUploadError) as many:
        await blobs.start("k4", "carol", None, 10, "cd" * 32)
    assert many.value.status == 429
    monkeypatch.setattr(tbm, "NODE_OPEN_BYTES", 25)
    with pytest.raises(BlobUploadError) as node:
        await blobs.start("k5", "dave", None, 10, "ef" * 32)
    assert node.value.status == 503


async def test_an_idle_upload_is_dropped_with_its_temp_file(store) -> None:
    blobs = TenantBlobs(store)
    opened = await blobs.start("k1", "alice", None, 10, "ab" * 32)
    assert opened is not None
    await blobs.chunk("k1", opened.id, 0, b64(b"12345"))
    assert len(temp_files(store)) == 1
    opened.touched = time.monotonic() - blobs.idle_s - 1
    with pytest.raises(BlobUploadError) as gone:
        await blobs.chunk("k1", opened.id, 5, b64(b"67890"))
    assert gone.value.status == 404
    assert temp_files(store) == [] and blobs.account_bytes("alice") == 0


async def test_a_wrong_digest_keeps_nothing(store) -> None:
    blobs = TenantBlobs(store)
    opened = await blobs.start("k1", "alice", None, 5, "ab" * 32)
    assert opened is not None
    with pytest.raises(BlobUploadError) as bad:
        await blobs.chunk("k1", opened.id, 0, b64(b"12345"))
    assert bad.value.field == "sha256"
    assert temp_files(store) == [] and store.usage() == (0, 0) and blobs.waiting == {}
    with pytest.raises(BlobUploadError) as not_b64:
        again = await blobs.start("k1", "alice", None, 5, "ab" * 32)
        assert again is not None
        await blobs.chunk("k1", again.id, 0, "not base64!")
    assert not_b64.value.field == "data"


async def test_a_blob_the_store_holds_needs_no_upload(store) -> None:
    blobs = TenantBlobs(store)
    digest = await upload(blobs, "k1", "alice", b"shared")
    assert await blobs.start("k2", "bob", None, 6, digest) is None
    assert blobs.account_bytes("bob") == 0


async def test_a_removed_accounts_uploads_go_at_once(store) -> None:
    blobs = TenantBlobs(store)
    stored = await upload(blobs, "k1", "alice", b"unnamed")
    opened = await blobs.start("k1", "alice", None, 10, "ab" * 32)
    theirs = await blobs.start("k2", "bob", None, 10, "cd" * 32)
    assert opened is not None and theirs is not None
    assert await blobs.drop_keys(lambda key: key == "k2") == 1
    assert set(blobs.open) == {theirs.id} and len(temp_files(store)) == 1
    assert await blobs.sweep(set(), set(), accounts={"bob"}) == [stored]
    assert not store.has_blob(stored)


async def test_concurrent_starts_cannot_all_pass_the_budget(store, monkeypatch) -> None:
    import asyncio

    blobs = TenantBlobs(store)
    monkeypatch.setattr(tbm, "ACCOUNT_BYTES", 100)
    tries = [blobs.start(f"k{n}", "alice", None, 40, f"{n:064x}") for n in range(8)]
    results = await asyncio.gather(*tries, return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 2
    assert blobs.account_bytes("alice") == 80


async def test_cancel_frees_the_space_at_once_and_only_for_its_key(store) -> None:
    blobs = TenantBlobs(store)
    opened = await blobs.start("k1", "alice", None, 10, "ab" * 32)
    assert opened is not None
    with pytest.raises(BlobUploadError) as theirs:
        await blobs.cancel("k2", opened.id)
    assert theirs.value.status == 404
    await blobs.cancel("k1", opened.id)
    assert temp_files(store) == [] and blobs.account_bytes("alice") == 0


async def test_the_disk_quota_also_counts_the_accounts_named_images(store) -> None:
    blobs = TenantBlobs(store)
    assert await blobs.start("k1", "alice", 100, 50, "ab" * 32, owned=50) is not None
    with pytest.raises(BlobUploadError) as over:  # 50 named + 50 open + 1 > 100
        await blobs.start("k2", "alice", 100, 1, "cd" * 32, owned=50)
    assert over.value.status == 413 and "disk quota" in str(over.value)
