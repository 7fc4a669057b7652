"""The range as a picture: each day's card volume stacked by status, and the sessions
with drift beneath it. matplotlib is imported here only, when a chart is asked for."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from service.onramp.lifecycle import Status
from service.reconciliation.gather import Compared
from service.reconciliation.totals import totals

# A status without a colour of its own (a new one) is drawn in indigo.
COLOURS: dict[str, str] = {
    Status.FULFILLMENT_COMPLETE: "#2e7d32",
    Status.FULFILLMENT_PROCESSING: "#66bb6a",
    Status.REQUIRES_PAYMENT: "#ffb300",
    Status.INITIALIZED: "#90a4ae",
    Status.REJECTED: "#c62828",
}


def draw_chart(path: Path, compared: list[Compared], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import StrMethodFormatter

    rows = totals(compared)
    days = sorted({row.day for row in rows})
    volume: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(days, 0.0))
    drifted = dict.fromkeys(days, 0)
    for row in rows:
        volume[row.status][row.day] += float(row.source_amount)
        drifted[row.day] += row.drifted
    figure, (top, bottom) = pyplot.subplots(
        2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    base = [0.0] * len(days)
    for status in sorted(volume, key=lambda s: list(COLOURS).index(s) if s in COLOURS else 99):
        heights = [volume[status][day] for day in days]
        top.bar(days, heights, bottom=base, label=status, color=COLOURS.get(status, "#5c6bc0"))
        base = [b + h for b, h in zip(base, heights, strict=True)]
    top.set_ylabel("Card volume (source currency)")
    top.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    top.set_title(title)
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False)
    bottom.bar(days, [drifted[day] for day in days], color="#d84315")
    bottom.set_ylabel("Sessions with drift")
    bottom.tick_params(axis="x", labelrotation=60, labelsize="small")
    if len(days) > 16:
        for index, label in enumerate(bottom.get_xticklabels()):
            label.set_visible(index % max(1, len(days) // 16) == 0)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
