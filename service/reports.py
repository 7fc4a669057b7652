"""How operator commands report: a table (and a progress bar) for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


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
        table.add_row(
            *(
                str(record.get(field) if record.get(field) is not None else "")
                for field, _ in columns
            )
        )
    console.print(table)
    if summary is not None:
        console.print(summary)
        return
    outcomes = Counter(record.get(outcome_field) for record in records)
    counted = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
    console.print(f"{len(records)} in all: {counted or 'nothing to do'}")
