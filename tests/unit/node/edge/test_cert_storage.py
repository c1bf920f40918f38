"""Caddy's certificate storage as the issuer reads it (the newest certificate of a host, any CA
directory) and as a new issuer seeds it; the directory name as certmagic derives it."""

from __future__ import annotations

from pathlib import Path

from certkit import make_cert

from formation.node.edge.cert_storage import issued, issuer_dir, seed

HOST = "www.example.com"


def test_the_directory_is_named_as_certmagic_names_it() -> None:
    assert issuer_dir("https://acme-v02.api.letsencrypt.org/directory") == \
        "acme-v02.api.letsencrypt.org-directory"
    assert issuer_dir("https://127.0.0.1:14000/dir") == "127.0.0.1-14000-dir"


def test_a_seeded_certificate_is_read_back_and_the_newest_wins(tmp_path: Path) -> None:
    assert issued(tmp_path, HOST) is None
    old_cert, old_key, old_after = make_cert(HOST, days=10)
    new_cert, new_key, new_after = make_cert(HOST, days=50)
    crt = seed(tmp_path, "https://old.example/dir", HOST, old_cert, old_key)
    assert crt == tmp_path / "certificates" / "old.example-dir" / HOST / f"{HOST}.crt"
    assert (crt.with_suffix(".key").stat().st_mode & 0o077) == 0  # the key: owner only
    seed(tmp_path, "https://127.0.0.1:14000/dir", HOST, new_cert, new_key)
    found = issued(tmp_path, HOST)
    assert found is not None and (found.cert_pem, found.key_pem, found.not_after) == (
        new_cert, new_key, new_after)
    assert old_after < new_after
    (tmp_path / "certificates" / "x" / HOST).mkdir(parents=True)
    (tmp_path / "certificates" / "x" / HOST / f"{HOST}.crt").write_text("half written")
    assert issued(tmp_path, HOST) == found  # a file that does not parse is passed over
