"""Which images the node knows and whom it asks for their blobs: the node that added the image
first, then members with an API endpoint, never itself."""

from __future__ import annotations

from formation.node.vmm.images import catalog

A, B, C, ME = "a" * 64, "b" * 64, "c" * 64, "f" * 64


def test_the_node_that_added_the_image_is_asked_first_and_this_node_never():
    nodes = [{"key": A, "name": "h1", "endpoints": ["10.0.0.1:7170"]},
             {"key": ME, "name": "me", "endpoints": ["10.0.0.9:7170"]},
             {"key": B, "name": "h2", "endpoints": []},
             {"key": C, "name": "h3", "endpoints": ["10.0.0.3:7170", "[fd00::3]:7170"]}]
    peers = catalog.peers_for({"added_by": C}, nodes, [(A, "10.9.9.9:1"), (B, "10.0.0.2:7170")],
                              ME, lambda key, underlay: f"mesh-{key[0]}" if key == A else underlay)
    assert [(p.label, p.address) for p in peers] == [
        ("h3", "10.0.0.3:7170"), ("h1", "mesh-a"), (B[:12], "10.0.0.2:7170")]


def test_images_are_deduplicated_by_digest_and_found_by_name_digest_or_prefix():
    d1, d2 = "12" * 32, "34" * 32
    view = [{"key": d1, "id": "01" * 32, "name": "web", "size": 3, "added_by": A},
            {"key": d1, "id": "02" * 32, "name": "web", "size": 3, "added_by": B},
            {"key": d2, "id": "03" * 32, "name": "db", "size": 5, "added_by": A,
             "parts": {"kernel": {"digest": C, "size": 5}}, "cmdline": "quiet"}]
    held = {d1: {"parts": {"kernel": {"digest": A, "size": 3}}, "cmdline": "console=ttyS0"}}
    found = catalog.images(view, held)
    assert [(i["name"], i["added_by"]) for i in found] == [("web", A), ("db", A)]
    assert found[0]["parts"] == held[d1]["parts"]  # from this node's manifest
    assert found[1]["cmdline"] == "quiet"
    assert catalog.find(found, "web") is found[0]
    assert catalog.find(found, d2) is found[1]
    assert catalog.find(found, "343434") is found[1]
    assert catalog.find(found, "34") is None  # too short to be a prefix
    assert catalog.find(found, "nope") is None


def test_manifests_survive_a_restart_and_ignore_foreign_files(tmp_path):
    m = catalog.Manifests(tmp_path)
    payload = {"digest": "ab" * 32, "name": "web", "size": 1, "cmdline": "",
               "parts": {"kernel": {"digest": A, "size": 1}}, "extra": "dropped"}
    m.save(payload)
    (m.dir / "not-a-digest.json").write_text("{}")
    (m.dir / f"{'cd' * 32}.json").write_text("{broken")
    loaded = catalog.Manifests(tmp_path).load()
    assert list(loaded) == ["ab" * 32] and "extra" not in loaded["ab" * 32]
    m.drop("../../etc/passwd")  # not a digest: nothing happens
    m.drop("ab" * 32)
    assert catalog.Manifests(tmp_path).load() == {}
