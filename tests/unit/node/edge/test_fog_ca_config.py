"""The .fog part of the edge: Caddy's config for the network CA (pure), and the feed's step that
opens the sealed key and writes the files Caddy reads (real sealed boxes, real files)."""

from __future__ import annotations

import stat
from pathlib import Path

from formation.identity import NodeIdentity
from formation.node.edge import fog_ca
from formation.node.edge.caddy_config import EnginePaths, caddy_config
from formation.node.edge.fog_ca_caddy import FogCaFiles
from formation.node.edge.fog_ca_feed import files_for
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings
from formation.node.state.ca_rules import fingerprint

PATHS = EnginePaths(Path("/run/edge"))
S = EdgeSettings(acme_directory="https://127.0.0.1:14000/dir")
B = Backend("10.42.0.5", 8000)
EDGE, OTHER = NodeIdentity.from_seed(b"\x02" * 32), NodeIdentity.from_seed(b"\x03" * 32)
FOG = FogCaFiles("ab" * 32, Path("/run/edge/fog-ca/r.crt"), Path("/run/edge/fog-ca/r.key"))
WITH_CA = EnginePaths(Path("/run/edge"), FOG)
ROUTES = [Route("web.fog", "https", None, (B,), "web"),
          Route("shop.example.com", "https", None, (B,), "shop"),
          Route("plain.fog", "http", None, (B,), "plain")]


def test_fog_hosts_get_the_network_cas_internal_issuer_before_the_acme_catch_all() -> None:
    config = caddy_config(ROUTES, S, WITH_CA)
    fog_policy, acme = config["apps"]["tls"]["automation"]["policies"]
    assert fog_policy == {"subjects": ["web.fog"],  # https only: plain.fog is http
                          "issuers": [{"module": "internal", "ca": FOG.ca_id}]}
    assert "subjects" not in acme and acme["issuers"][0]["module"] == "acme"
    authority = config["apps"]["pki"]["certificate_authorities"][FOG.ca_id]
    assert authority["root"] == {"certificate": str(FOG.root_cert),
                                 "private_key": str(FOG.root_key), "format": "pem_file"}
    assert authority["install_trust"] is False
    assert FOG.ca_id == "fog-" + "ab" * 8  # a rotated root is another CA, another intermediate


def test_without_the_network_ca_fog_hosts_use_caddys_own_ca_never_acme() -> None:
    config = caddy_config(ROUTES, S, PATHS)
    fog_policy = config["apps"]["tls"]["automation"]["policies"][0]
    assert fog_policy["issuers"] == [{"module": "internal", "ca": "local"}]
    assert list(config["apps"]["pki"]["certificate_authorities"]) == ["local"]


def test_no_fog_route_leaves_the_tls_app_as_before() -> None:
    plain = [r for r in ROUTES if r.name == "shop"]
    assert caddy_config(plain, S, WITH_CA)["apps"]["tls"] == caddy_config(
        plain, S, PATHS)["apps"]["tls"]


def test_the_feed_writes_the_root_and_the_opened_key_for_a_recipient_only(tmp_path: Path) -> None:
    root, key = fog_ca.make_root("lab")
    ca = {"root_pem": root, "fingerprint": fingerprint(root),
          "keys": fog_ca.seal_keys(key, [EDGE.public_key_hex])}
    files, why = files_for(tmp_path, ca, EDGE)
    assert why is None and files is not None
    assert files.root_cert.read_text() == root and files.root_key.read_text() == key
    assert stat.S_IMODE(files.root_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.root_key.parent.stat().st_mode) == 0o700
    # a node the key is not sealed to gets nothing, and one line why
    files, why = files_for(tmp_path / "other", ca, OTHER)
    assert files is None and why is not None and "formation ca reseal" in why
    assert not (tmp_path / "other").exists()
    # a key sealed to another node put under this node's name does not open: one line
    forged = {**ca, "keys": {OTHER.public_key_hex: ca["keys"][EDGE.public_key_hex]}}
    files, why = files_for(tmp_path / "forged", forged, OTHER)
    assert files is None and why is not None and "\n" not in why
    # a rotated root replaces the files: the old key does not linger
    root2, key2 = fog_ca.make_root("lab")
    ca2 = {"root_pem": root2, "fingerprint": fingerprint(root2),
           "keys": fog_ca.seal_keys(key2, [EDGE.public_key_hex])}
    files2, _ = files_for(tmp_path, ca2, EDGE)
    assert files2 is not None
    assert sorted(p.name for p in files2.root_cert.parent.iterdir()) == sorted(
        [files2.root_cert.name, files2.root_key.name])
    assert files_for(tmp_path, None, EDGE) == (None, None)
