"""What the operator types to join, turned into a request or a sentence; the replication lag as
the dashboard words it; a QR code that fits the dialog's width."""

from __future__ import annotations

from formation.api.join_models import JoinAskRequest, JoinTokenRequest
from formation.api.state_models import PeerSyncState, StateStatus
from formation.discovery import token as tokens
from formation.tui.join_flow import join_request
from formation.tui.qr_text import qr_code, qr_lines
from formation.tui.widgets.network_summary import sync_text

TOKEN = tokens.new_token(["192.0.2.10:7170"], bytes(32), 1_800_000_000, bytes(range(16)))


def test_join_input_is_a_token_an_address_or_an_error() -> None:
    typed = TOKEN.encode().lower().replace("-", " ")
    token = join_request(f"  {typed[:30]}\n {typed[30:]}  ")  # wrapped when copied
    assert isinstance(token, JoinTokenRequest) and tokens.decode(token.token) == TOKEN
    typo = TOKEN.encode()[:12] + "U" + TOKEN.encode()[13:]
    assert join_request(typo) == ("invite token: bad character 'U' at position 13 (a token "
                                  "has only digits and letters other than U)")
    changed = TOKEN.encode()[:20] + ("Z" if TOKEN.encode()[20] != "Z" else "Y") + \
        TOKEN.encode()[21:]
    assert join_request(changed) == ("invite token: checksum does not match: a character is "
                                     "mistyped, missing or extra")
    assert "old-format token" in join_request("fmn1gliThwFQDw8PDw8PDw8P")
    ask = join_request("10.0.0.1:7170")
    assert isinstance(ask, JoinAskRequest) and ask.address == "10.0.0.1:7170"
    assert isinstance(join_request("[fd00::1]:7170"), JoinAskRequest)
    assert "HOST:PORT" in join_request("")
    assert "expected an invite token" in join_request("10.0.0.1")
    assert "expected an invite token" in join_request("host:99999")
    assert "expected an invite token" in join_request("two words:1")


def status(*peers: PeerSyncState) -> StateStatus:
    return StateStatus(network=None, genesis=None, ops=3, heads=[], authors=1, buffered=0,
                       buffer_bytes=0, buffer_dropped=0, refused={}, equivocations=[],
                       peers=list(peers))


def test_sync_text_names_the_worst_lag_and_failing_peers() -> None:
    assert sync_text(status()) == ""
    text = sync_text(status(
        PeerSyncState(address="a:1", ok=True, in_sync_age_s=2.0),
        PeerSyncState(address="b:1", ok=True, in_sync_age_s=7.4, heads_missing=2),
        PeerSyncState(address="c:1", ok=False, error="refused")))
    assert text == " · sync 2/3 peers, lag ≤7s, 2 heads behind"
    assert sync_text(status(PeerSyncState(address="a:1"))) == " · sync 0/1 peers"


def test_qr_of_a_token_fits_beside_its_text_at_80x24() -> None:
    lines = qr_lines(TOKEN.encode())
    # version 4: 33 modules and a quiet zone of 2 on each side, two module rows a text row
    assert len({len(line) for line in lines}) == 1 and len(lines[0]) == 37 and len(lines) == 19
    assert set("".join(lines)) <= {" ", "\u2580", "\u2584", "\u2588"}


def test_a_short_token_whose_undashed_form_fits_a_micro_qr_code_still_gets_a_qr_code() -> None:
    # 23 characters need a QR code (version 1), the 20 without dashes fit a Micro QR code (M4):
    # comparing their versions (1 <= "M4") raised TypeError; a Micro code is never drawn.
    code = qr_code("ABCDE-FGHIJ-KLMNO-PQRST")
    assert not code.is_micro and code.version == 1
    assert len(qr_lines("ABCDE-FGHIJ-KLMNO-PQRST")) == (21 + 2 * 2 + 1) // 2
