"""How operator commands report: a table (and a progress bar) for people, JSON for scripts;
every cell of a table or a CSV file made safe to read (`safe_cell`)."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

# Past this many characters a cell is cut, and ends with CUT_MARK.
CELL_LIMIT = 200
CUT_MARK = "…"
# What a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A plain decimal, as the service writes amounts: a spreadsheet takes it for a number.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# Bidirectional controls, which make text read otherwise than it is stored.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe_cell(value: object) -> str:
    """`value` as a cell of a CSV file or a table, which finance opens in a spreadsheet
    and whose text may be anybody's (Stripe's fields, an error's message).

    - A cell a spreadsheet would run as a formula (a leading `=`, `+`, `-`, `@`, tab or
      carriage return) gets a leading `'`, as OWASP advises, which shows it as text. A
      plain decimal (`-1.00`, the form the service writes amounts in) is left as it is:
      a spreadsheet reads it as a number, which it is, and a number runs nothing.
    - Bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C),
      which make a cell read otherwise than it is, are shown escaped (`\\u202e`).
    - Past CELL_LIMIT characters of the value, the cell is cut and ends with CUT_MARK.
    None is an empty cell. JSON output needs none of this and keeps values as they are.
    """
    text = "" if value is None else str(value)
    if len(text) > CELL_LIMIT:
        text = text[:CELL_LIMIT] + CUT_MARK
    text = _BIDI.sub(lambda control: f"\\u{ord(control.group()):04x}", text)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        text = "'" + text
    return text


def safe_row(*values: object) -> list[Text]:
    """A rich table's row of `safe_cell`s, as plain text: never read as markup or emoji."""
    return [Text(safe_cell(value)) for value in values]


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int | None], None]]:
    """A callback `(done, total)` drawing a bar on a terminal, doing nothing elsewhere;
    a total of None draws a bar that counts without knowing how far it has to go."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def print_report(
    rows: Sequence[Any],
    columns: Sequence[tuple[str, str]],
    *,
    as_json: bool,
    title: str,
    outcome_field: str = "outcome",
    summary: str | None = None,
) -> None:
    """Rows are dataclasses; `columns` maps their fields to headings. Under the table,
    `summary`, or else the rows counted by outcome."""
    records = [
        asdict(row) if is_dataclass(row) and not isinstance(row, type) else dict(row)
        for row in rows
    ]
    if as_json:
        print(json.dumps(records, indent=2, default=str))
        return
    console = Console()
    table = Table(title=title)
    for _, heading in columns:
        table.add_column(heading)
    for record in records:
        table.add_row(*safe_row(*(record.get(field) for field, _ in columns)))
    console.print(table)
    if summary is not None:
        console.print(summary)
        return
    outcomes = Counter(record.get(outcome_field) for record in records)
    counted = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
    console.print(f"{len(records)} in all: {counted or 'nothing to do'}")
