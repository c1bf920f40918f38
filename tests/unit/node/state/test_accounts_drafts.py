"""The draft book: a node relays only bodies it drafted for that key, once, within TTL_S, and
what it remembers is bounded per key and in keys."""

from __future__ import annotations

from formation.node.state import tenant_drafts
from formation.node.state.tenant_drafts import PER_KEY, TTL_S, DraftBook


def test_a_draft_is_taken_once_by_its_key_within_its_time() -> None:
    now = [0.0]
    book = DraftBook(clock=lambda: now[0])
    book.issued("a", b"body")
    assert not book.take("b", b"body")  # another key
    assert not book.take("a", b"other")
    assert book.take("a", b"body")
    assert not book.take("a", b"body")  # once
    book.issued("a", b"late")
    now[0] += TTL_S + 1
    assert not book.take("a", b"late")


def test_the_book_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(tenant_drafts, "KEYS", 3)
    book = DraftBook()
    for i in range(PER_KEY + 5):
        book.issued("a", bytes([i]))
    assert len(book) == PER_KEY
    assert not book.take("a", bytes([0])) and book.take("a", bytes([PER_KEY + 4]))
    for key in "bcdef":
        book.issued(key, b"x")
    assert len(book._by_key) == 3 and not book.take("a", bytes([PER_KEY + 3]))
