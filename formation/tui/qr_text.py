"""A QR code as lines of text: two module rows per character row (upper/lower half blocks), so a
module is about square in a terminal cell. The caller draws it dark-on-light (the style is the
screen's), whatever the terminal's own colours are; a phone's camera needs that contrast."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from segno import QRCode

BORDER = 2  # quiet zone, in modules
_CELL = {(0, 0): " ", (1, 0): "\u2580", (0, 1): "\u2584", (1, 1): "\u2588"}


def qr_code(token: str) -> QRCode:
    """A segno QR code of an invite token as shown (grouped by dashes) when that is no bigger
    than without the dashes: a phone then shows the groups to type. Error correction L at
    least (segno raises it while the symbol keeps its size); never a Micro QR code, which many
    phone cameras do not read (and whose string versions do not compare with numbers)."""
    import segno  # only when an invite is shown: not on the console's start-up path

    grouped = segno.make_qr(token, error="l")
    compact = segno.make_qr(token.replace("-", ""), error="l")
    return grouped if grouped.symbol_size() <= compact.symbol_size() else compact


def qr_lines(token: str) -> list[str]:
    """The token's QR code (`qr_code`) as half-block lines, with its quiet zone."""
    rows = [list(r) for r in qr_code(token).matrix_iter(border=BORDER)]
    if len(rows) % 2:
        rows.append([0] * len(rows[0]))
    return ["".join(_CELL[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
            for upper, lower in zip(rows[::2], rows[1::2], strict=True)]
