"""How a reconciliation is told: a table for people, JSON for scripts, CSV for finance's
spreadsheets (one row per session), and gauges for Prometheus (node_exporter's textfile
collector), so that an alert fires on drift found by a scheduled run. Stripe's text
reaches table and CSV cells only through `service.reports.safe_cell`."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from rich.console import Console
from rich.table import Table

from service.reconciliation.drift import DRIFT_KINDS
from service.reconciliation.gather import Compared
from service.reconciliation.totals import DayTotal, totals
from service.reports import safe_cell, safe_row


def as_json(compared: list[Compared], since: datetime, until: datetime) -> str:
    drifted = [c for c in compared if c.drift]
    return json.dumps(
        {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "compared": len(compared),
            "drifted": len(drifted),
            "driftByKind": drift_by_kind(compared),
            "drift": [asdict(c) for c in drifted],
            "totals": [_total_record(t) for t in totals(compared)],
        },
        indent=2,
    )


def as_csv(compared: list[Compared]) -> str:
    out = io.StringIO()
    names = [f.name for f in fields(Compared)]
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for session in compared:
        record = asdict(session) | {"drift": " ".join(session.drift)}
        writer.writerow({name: safe_cell(value) for name, value in record.items()})
    return out.getvalue()


def as_table(compared: list[Compared], since: datetime, until: datetime, console: Console) -> None:
    drifted = [c for c in compared if c.drift]
    if drifted:
        table = Table(title="Drift")
        headings = ("Session", "Stripe session", "Ours", "Stripe's", "Delivery", "Drift", "Why")
        for heading in headings:
            table.add_column(heading)
        for c in drifted:
            table.add_row(
                *safe_row(
                    c.session_id,
                    c.stripe_session_id,
                    c.status,
                    c.stripe_status,
                    c.delivery,
                    ", ".join(c.drift),
                    c.detail,
                )
            )
        console.print(table)
    table = Table(
        title=f"Totals by day and status, {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}"
    )
    headings = ("Day", "Status", "Sessions", "Source", "Fees", "Delivered", "Drifted")
    for heading in headings:
        table.add_column(heading, justify="left" if heading in ("Day", "Status") else "right")
    for t in totals(compared):
        table.add_row(
            *safe_row(
                t.day,
                t.status,
                t.sessions,
                f"{t.source_amount} {t.source_currency}",
                f"{t.fees} {t.source_currency}",
                f"{t.delivered_amount} {t.destination_currency}",
                t.drifted,
            )
        )
    console.print(table)
    kinds = ", ".join(f"{n} {kind}" for kind, n in drift_by_kind(compared).items() if n)
    console.print(
        f"{len(compared)} sessions compared, {len(drifted)} with drift"
        + (f" ({kinds})" if kinds else "")
    )


def drift_by_kind(compared: list[Compared]) -> dict[str, int]:
    counts = Counter(kind for c in compared for kind in c.drift)
    return {kind: counts.get(kind, 0) for kind in DRIFT_KINDS}


def write_metrics(path: Path, compared: list[Compared]) -> None:
    """prometheus_client writes the file aside and renames it: the collector never reads
    half of one."""
    registry = CollectorRegistry()
    drift = Gauge(
        "onramp_reconcile_drift_sessions",
        "Sessions with this kind of drift in the last reconciliation.",
        ["kind"],
        registry=registry,
    )
    for kind, count in drift_by_kind(compared).items():
        drift.labels(kind=kind).set(count)
    sessions = Gauge(
        "onramp_reconcile_sessions",
        "Sessions compared in the last reconciliation.",
        registry=registry,
    )
    sessions.set(len(compared))
    finished = Gauge(
        "onramp_reconcile_last_run_timestamp_seconds",
        "When the last reconciliation finished.",
        registry=registry,
    )
    finished.set_to_current_time()
    write_to_textfile(str(path), registry)


def _total_record(total: DayTotal) -> dict[str, Any]:
    record = asdict(total)
    for name in ("source_amount", "fees", "delivered_amount"):
        record[name] = str(record[name])
    return record
