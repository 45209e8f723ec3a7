"""CSV cells a spreadsheet could run as formulas (bot.spreadsheet): the shared rule of the
services export and the figures CSV. The exports themselves: tests/test_services_import.py,
tests/test_figures.py, tests/test_console_figures.py."""

from __future__ import annotations

import pytest

from bot.spreadsheet import plain_cell, safe_cell


@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"),
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
    ("+999 555 0142", "'+999 555 0142"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("-", "'-"),
    # plain numbers are read as numbers, never formulas: left as they are
    ("-3", "-3"), ("-3.38", "-3.38"), ("+44", "+44"), ("-1e-3", "-1e-3"), ("-.5", "-.5"),
    # anything else is untouched
    ("Maiduguri", "Maiduguri"), ("a=b", "a=b"), ("", ""), (None, ""), (7, "7"), (-2, "-2"),
    ("'quoted", "'quoted"),
])
def test_a_cell_that_could_be_a_formula_gets_a_quote(value, cell):
    assert safe_cell(value) == cell
    assert plain_cell(safe_cell(value)) == ("" if value is None else str(value))
