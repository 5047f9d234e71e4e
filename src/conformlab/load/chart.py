"""An inline SVG of a load run: accepted vs rejected requests per second (stacked bars), and for the
rate limit the accepted count over the last window against the documented budget's line.

Pure (no locust): built from the request records (see verdicts.py) and the profile's RateBudget, for
the HTML report.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any, Sequence

from .verdicts import accepted, per_second

if TYPE_CHECKING:
    from conformlab.profiles import RateBudget

WIDTH, HEIGHT = 760, 280
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 30, 58


def series(budget: RateBudget) -> list[tuple[str, str, str]]:
    """(bucket of verdicts.per_second, colour, label) per stacked bar part."""
    parts = [("accepted", "#3a9a48", "accepted"), ("over_limit", "#f0a030", f"{budget.over_limit.status} rate limit")]
    if budget.protection:
        parts.append(("protection", "#c0392b", f"{budget.protection.refusal.status} {budget.protection.name}"))
    return parts + [("other", "#7f7f7f", "other 5xx / no answer")]


def accepted_rejected_svg(records: Sequence[dict[str, Any]], budget: RateBudget, *, title: str = "",
                          budget_line: bool = False) -> str:
    buckets = per_second(records, budget)
    if not buckets:
        return ""
    limit, window = budget.requests, budget.seconds
    t0 = min(r["t"] for r in records)
    seconds = max(buckets) + 1
    rolling: list[int] = []
    if budget_line:
        # Accepted requests sent in the window before the end of each second (send times: a picture,
        # the verdict itself uses the certain windows of verdicts.py).
        ok = [r["t"] - t0 for r in records if accepted(r, budget)]
        rolling = [sum(1 for t in ok if end - window < t <= end) for end in range(1, seconds + 1)]
    top = max([sum(b.values()) for b in buckets.values()] + rolling + ([limit] if budget_line else []))
    top = max(5, int(top * 1.15) + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / seconds

    def x(second: float) -> float:
        return LEFT + second * step

    def y(count: float) -> float:
        return TOP + plot_h - count / top * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
             f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>']
    for tick in _ticks(top):  # y axis grid
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e5e5"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    for second, counts in sorted(buckets.items()):  # stacked bars
        base = 0
        for key, colour, label in series(budget):
            if counts[key]:
                parts.append(f'<rect x="{x(second) + 1:.1f}" y="{y(base + counts[key]):.1f}" '
                             f'width="{max(step - 2, 1):.1f}" height="{counts[key] / top * plot_h:.1f}" '
                             f'fill="{colour}"><title>+{second} s: {counts[key]} {label}</title></rect>')
                base += counts[key]
    for tick in range(0, seconds + 1, 5 if seconds <= 60 else 10):  # x axis
        parts.append(f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 14}" text-anchor="middle">{tick}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#333"/>'
                 f'<text x="{LEFT + plot_w / 2:.0f}" y="{TOP + plot_h + 28}" text-anchor="middle">'
                 f'seconds since the first request (requests per second by send time)</text>')
    legend = series(budget)
    if budget_line:
        points = " ".join(f"{x(i + 1):.1f},{y(n):.1f}" for i, n in enumerate(rolling))
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(limit):.1f}" y2="{y(limit):.1f}" '
                     f'stroke="#1f5fbf" stroke-dasharray="6 4"/>'
                     f'<text x="{WIDTH - RIGHT - 2}" y="{y(limit) - 4:.1f}" text-anchor="end" fill="#1f5fbf">'
                     f'documented budget: {limit} per {window:g} s</text>'
                     f'<polyline points="{points}" fill="none" stroke="#1f5fbf" stroke-width="2"/>')
        legend.append(("", "#1f5fbf", f"accepted in the last {window:g} s"))
    lx = LEFT
    for _, colour, label in legend:
        parts.append(f'<rect x="{lx}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{lx + 14}" y="{HEIGHT - 5}">{escape(label)}</text>')
        lx += 24 + 6.2 * len(label)
    parts.append("</svg>")
    return "\n".join(parts)


def _ticks(top: int) -> list[int]:
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 10 ** 9) if top / s <= 8)
    return list(range(0, top + 1, step))
