"""Charts as inline SVG, drawn on the server from a version's data: no script and no CDN, so
a page shows them as soon as it arrives, with JavaScript off too."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from markupsafe import Markup, escape

# Twenty colours that stay apart on a white page (Tableau 20); clusters past 20 repeat them.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
NEUTRAL = "#4c78a8"
# Sizes in CSS pixels: a chart is drawn at its own size and only shrinks to fit a phone.
# Bar charts: a label column, the bars, room for the value written after the longest one.
WIDTH, LABEL_WIDTH, VALUE_WIDTH, ROW, GAP = 460, 180, 60, 24, 5
LABEL_CHARS = 21  # about 170 pixels of text at 14 px
MAP_WIDTH, MAP_HEIGHT, MAP_PAD, DOT = 600, 400, 8, 5


def cluster_color(cluster: int) -> str:
    return PALETTE[cluster % len(PALETTE)]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float  # zero or more
    shown: str  # the value as written beside the bar
    color: str = NEUTRAL
    href: str | None = None


def bar_chart(bars: Sequence[Bar], title: str) -> Markup:
    """Horizontal bars from zero, one row each; a label too long for its column is cut, and
    every row says everything in its tooltip."""
    height = len(bars) * ROW
    widest = max((bar.value for bar in bars), default=0) or 1
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    rows = []
    for i, bar in enumerate(bars):
        top, length = i * ROW, max(bar.value, 0) / widest * span
        baseline = top + ROW / 2 + 4
        label = bar.label if len(bar.label) <= LABEL_CHARS else bar.label[: LABEL_CHARS - 1] + "…"
        row = (
            f"<g><title>{escape(bar.label)}: {escape(bar.shown)}</title>"
            f'<text x="{LABEL_WIDTH - 6}" y="{baseline:g}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{top + GAP / 2:g}" width="{length:.1f}" '
            f'height="{ROW - GAP}" fill="{bar.color}"/>'
            f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{baseline:g}">{escape(bar.shown)}</text>'
            "</g>"
        )
        rows.append(f'<a href="{escape(bar.href)}">{row}</a>' if bar.href else row)
    return _svg(WIDTH, height, title, "".join(rows))


def cluster_map(points: Sequence[Sequence[float]], href: Callable[[int], str]) -> Markup:
    """Movies as [movieId, x, y, cluster] in two dimensions, one colour per cluster, both axes on
    one scale. Each cluster is a single path of round dots (zero-length segments), about ten
    bytes a movie; a dot links to its cluster's page."""
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    left, bottom = min(xs, default=0), min(ys, default=0)
    x_span, y_span = (max(xs, default=0) - left) or 1, (max(ys, default=0) - bottom) or 1
    scale = min((MAP_WIDTH - 2 * MAP_PAD) / x_span, (MAP_HEIGHT - 2 * MAP_PAD) / y_span)
    x0 = (MAP_WIDTH - x_span * scale) / 2
    y0 = (MAP_HEIGHT + y_span * scale) / 2  # SVG's y grows downwards
    dots: dict[int, list[str]] = {}
    for _, x, y, cluster in points:
        dot = f"M{x0 + (x - left) * scale:.0f} {y0 - (y - bottom) * scale:.0f}h0"
        dots.setdefault(int(cluster), []).append(dot)
    paths = "".join(
        f'<a href="{escape(href(cluster))}"><path stroke="{cluster_color(cluster)}" '
        f'd="{"".join(d)}"><title>Cluster {cluster}: {len(d)} movies shown</title></path></a>'
        for cluster, d in sorted(dots.items())
    )
    body = f'<g fill="none" stroke-width="{DOT}" stroke-linecap="round">{paths}</g>'
    return _svg(MAP_WIDTH, MAP_HEIGHT, "Movies in two dimensions, coloured by cluster", body)


class MapDrawing(NamedTuple):
    version: str  # whose map it is
    svg: Markup | None  # None for a version without a map
    points: int


class MapCache:
    """One version's cluster map, drawn once per process: the map of a version never changes,
    and drawing it reads and walks every sampled movie. Another version's map replaces it in one
    assignment, so a thread sees the old drawing or the new one, never a mix."""

    def __init__(self) -> None:
        self._drawn = MapDrawing("", None, 0)

    def get(self, version: str, draw: Callable[[], MapDrawing]) -> MapDrawing:
        """`version`'s map, drawn by `draw` unless kept. It is kept under the version `draw`
        read it from, which a flip since the caller read `version` may have made a newer one."""
        drawn = self._drawn
        if drawn.version != version:
            drawn = self._drawn = draw()
        return drawn


def _svg(width: int, height: int, title: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>'
    )
