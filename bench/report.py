"""A run's results as a Markdown table and a chart of throughput against concurrency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt  # the backend is chosen first


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _verdict(met: dict[str, bool]) -> str:
    if not met:
        return ""
    return (
        "yes"
        if all(met.values())
        else "**no** (" + ", ".join(k for k, v in met.items() if not v) + ")"
    )


def _goal(goal: dict[str, float]) -> str:
    parts = []
    if "throughput_ratio_at_least" in goal:
        parts.append(f"≥ {goal['throughput_ratio_at_least']}x")
    if "p99_ratio_at_most" in goal:
        parts.append(f"p99 ≤ {goal['p99_ratio_at_most']}x")
    return ", ".join(parts)


def markdown(result: dict[str, Any]) -> str:
    """The comparisons, then the figures that have no baseline, then how it ran."""
    lines = [
        "| benchmark | side | throughput | p50 (ms) | p99 (ms) | server CPU (ms/req) "
        "| throughput ratio | p99 ratio | goal | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for comparison in result["comparisons"]:
        for side in ("service", "baseline"):
            figures = comparison["sides"][side]
            first = side == "service"
            lines.append(
                f"| {comparison['name'] if first else ''} | {side} "
                f"| {_number(figures['throughput'])} {comparison['unit'] if first else ''} "
                f"| {_number(figures['p50_ms'], 1)} | {_number(figures['p99_ms'], 1)} "
                f"| {_number(figures.get('server_cpu_ms'), 2)} "
                + (
                    f"| **{comparison['throughput_ratio']:.2f}x** "
                    f"| {comparison['p99_ratio']:.2f}x | {_goal(comparison['goal'])} "
                    f"| {_verdict(comparison['met'])} |"
                    if first
                    else "| | | | |"
                )
            )
    lines += ["", "| figure | value | goal | met |", "|---|---|---|---|"]
    lines += [f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} |" for row in _other_rows(result)]
    for name, error in result.get("failed", {}).items():
        lines.append(f"| {name} | **failed**: {error.splitlines()[0][:200]} | | **no** |")
    settings = result["settings"]
    machine = result["machine"]
    lines += [
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}, PostgreSQL {machine['postgresql']}, load average "
        f"{', '.join(f'{x:.2f}' for x in machine['load_average_at_start'])} at the start. "
        f"Settings: {settings['workers']} uvicorn worker(s) per side, concurrency "
        f"{settings['concurrency']}, {settings['rounds']} alternating rounds of "
        f"{settings['seconds']} s per side (medians; ratios are medians of each round's pair), "
        f"run took {result['duration_seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def _mib(values: list[float]) -> str:
    return ", ".join(f"{value:.0f}" for value in values)


def _other_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    if ceiling := result.get("load_generator_ceiling"):
        rows.append(
            (
                "load generator against an empty handler (its own ceiling)",
                f"{_number(ceiling['throughput'])} requests/s",
                "well above every figure measured",
                "",
            )
        )
    if stand_in := result.get("stripe_stand_in"):
        rows.append(
            (
                "Stripe stand-in alone, creates",
                f"{_number(stand_in['throughput'])}/s, {stand_in['times_service_create']:.1f}x "
                "the service's create throughput",
                "several times the service's",
                "yes" if stand_in["times_service_create"] >= 3 else "**no**",
            )
        )
    if memory := result.get("memory"):
        rows.append(
            (
                f"RSS per worker after {memory['requests']:,} requests",
                ", ".join(f"{mib:.0f} MiB" for mib in memory["rss_mib_after_requests"])
                + f" (after warm-up {_mib(memory['rss_mib_after_warm_up'])})",
                f"≤ {memory['goal']['rss_mib_at_most']:.0f} MiB",
                "yes" if memory["met"]["rss"] else "**no**",
            )
        )
        if memory["soak_growth_mib"] is not None:
            rows.append(
                (
                    f"RSS growth over a {memory['soak_seconds']:.0f} s soak "
                    f"({len(memory['soak_samples'])} samples)",
                    f"{memory['soak_growth_mib']:+.1f} MiB",
                    "not growing (≤ 5 MiB)",
                    "yes" if memory["met"]["no_growth"] else "**no**",
                )
            )
    if delivery := result.get("delivery"):
        batched, single = delivery["batched"], delivery["one_call_at_a_time"]
        rows.append(
            (
                f"delivery verification, {delivery['sessions']:,} sessions",
                f"{batched['seconds']:.1f} s batched ({batched['confirmed']:,} confirmed), "
                f"{single['seconds']:.1f} s one call at a time: {delivery['speed_up']:.1f}x",
                "all within 60 s; batching ≥ 5x",
                _verdict(delivery["met"]),
            )
        )
    if hooks := result.get("merchant_webhooks"):
        rows += _merchant_rows(hooks)
    return rows


def _merchant_rows(hooks: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    alone, others = hooks["sides"]["alone"], hooks["sides"]["with others"]
    met = hooks["met"]
    events = f"{hooks['events']:,}"
    return [
        (
            f"merchant webhooks: {events} events to the healthy endpoint, with a failing and"
            " a slow one",
            f"{others['healthy_seconds']:.1f} s ({others['healthy_per_second']:,.0f}/s)",
            f"≤ {hooks['goal']['healthy_within_seconds']:.0f} s",
            "yes" if met["healthy_within_seconds"] else "**no**",
        ),
        (
            "... against the healthy endpoint alone",
            f"{alone['healthy_seconds']:.1f} s alone: **{hooks['ratio_with_others']:.2f}x**",
            "",
            "",
        ),
        (
            "... the slow endpoint (2 s answers)",
            f"{others['slow_per_second']:.1f} deliveries/s"
            f" (ceiling {hooks['slow_ceiling_per_second']:.1f}/s)",
            "",
            "",
        ),
        (
            "... worker CPU per request sent",
            f"{alone['worker_cpu_ms_per_request']:.2f} ms alone,"
            f" {others['worker_cpu_ms_per_request']:.2f} ms with the others",
            "",
            "",
        ),
    ]


def chart(result: dict[str, Any], path: Path) -> Path:
    """Throughput against concurrency, one panel per benchmark, both sides."""
    sweep = result["sweep"]
    panels = list(sweep["results"])
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for axis, name in zip(axes[0], panels, strict=True):
        for side, style in (("service", "o-"), ("baseline", "s--")):
            series = sweep["results"][name][side]
            axis.plot(sweep["levels"], [stats["throughput"] for stats in series], style, label=side)
        axis.set_xscale("log", base=2)
        axis.set_xticks(sweep["levels"], [str(level) for level in sweep["levels"]])
        axis.set_title(name)
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel("requests/s")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend()
    workers = result["settings"]["workers"]
    figure.suptitle(f"onramp against its baselines ({workers} worker(s) each, 2-core machine)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
