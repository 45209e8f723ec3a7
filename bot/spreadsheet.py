"""CSV cells that a spreadsheet opens as text, never as a formula (CSV injection).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may be run as a
formula by Excel, LibreOffice or Google Sheets when the file is opened (OWASP, "CSV
Injection"): a service's name or phone typed by a partner, or an area name, must not call a
command or a web address on a coordinator's computer. Such a cell gets a single quote in
front, which spreadsheets show as text and do not display.

One exception, on purpose: a plain number (``-3``, ``+44``, ``-12.5``, ``1e-3``) is left as it
is. A spreadsheet reads it as a number, never a formula, and a latitude of ``-3.38`` must stay
a number for whoever maps the file. ``plain_cell`` takes the quote off again, so an exported
services file imports back unchanged (``helpline services export`` then ``import``).
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def safe_cell(value: object) -> str:
    """The text of ``value`` for a CSV cell: a leading ``'`` when a spreadsheet could take it
    for a formula (not for a plain number)."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not NUMBER.match(text):
        return "'" + text
    return text


def safe_row(values: list) -> list[str]:
    return [safe_cell(v) for v in values]


def plain_cell(text: str) -> str:
    """The cell as it was before ``safe_cell`` (the quote taken off)."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) \
            and not NUMBER.match(text[1:]):
        return text[1:]
    return text
