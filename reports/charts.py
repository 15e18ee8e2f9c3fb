"""The dashboard's charts: SVG bar charts drawn on the server by pygal, one bar a facility
day, with labelled axes, the dates along the time axis and the amounts in yuan on the value
axis. The page shows them as images (``<img src=…svg>``), so it carries no chart script or
style of its own and the strict CSP holds; pygal's tooltip script is taken out of the SVG
(an image never runs script anyway), and the values are also listed in a table under each
chart for readers without the image."""

import datetime as dt
import math
from decimal import Decimal
from xml.etree import ElementTree

import pygal
from pygal.style import Style

from commissary.money import format_fen

SVG = "{http://www.w3.org/2000/svg}"
WIDTH, HEIGHT = 760, 300
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#333",
    foreground_strong="#333",
    foreground_subtle="#bbb",
    colors=("#417690",),
    font_family="system-ui, 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    title_font_size=15,
    value_font_size=11,
)


def _date_labels(days: list[dt.date]) -> tuple[list[str], list[str]]:
    """Every day's label, and the ones printed under the axis: about eight, always the last."""
    labels = [f"{day:%m-%d}" for day in days]
    step = max(1, -(-len(days) // 8))
    major = [labels[index] for index in range(len(labels) - 1, -1, -step)]
    return labels, major


def value_ticks(largest: Decimal) -> list[Decimal]:
    """Round steps of 1, 2 or 5 times a power of ten from zero past ``largest``, at most six
    of them, and at least up to one yuan: a window of empty days still has a scale."""
    top = max(largest, Decimal(1))
    step = Decimal(1).scaleb(top.adjusted() - 1)
    while True:
        for factor in (1, 2, 5):
            if top / (step * factor) <= 5:
                step *= factor
                count = math.ceil(top / step)
                return [step * n for n in range(count + 1)]
        step *= 10


def daily_bar_chart(
    points: list[tuple[dt.date, int | None]],
    *,
    title: str,
    x_title: str,
    y_title: str,
    series: str,
    currency: str,
    no_data_text: str,
) -> str:
    """An SVG bar chart of (day, amount in fen) points. The value axis starts at zero and
    reaches at least one yuan, so a window of empty days still draws a readable scale. A day
    whose amount is None (not known: the page says why) draws no bar, as an empty day."""
    days = [day for day, _ in points]
    values = [Decimal(amount_fen or 0).scaleb(-2) for _, amount_fen in points]
    largest = max(values, default=Decimal(0))
    labels, major = _date_labels(days)
    ticks = value_ticks(largest)
    chart = pygal.Bar(
        width=WIDTH,
        height=HEIGHT,
        style=STYLE,
        js=[],
        disable_xml_declaration=True,
        show_legend=False,
        title=title,
        x_title=x_title,
        y_title=y_title,
        x_labels=labels,
        x_labels_major=major,
        show_minor_x_labels=False,
        range=(0, float(ticks[-1])),
        y_labels=[float(tick) for tick in ticks],
        no_data_text=no_data_text,
        value_formatter=lambda yuan: format_fen(int(Decimal(yuan).scaleb(2)), currency),
        print_values=len(points) <= 31,
        truncate_label=-1,
    )
    # An empty day is no bar and no printed value (pygal leaves None out).
    chart.add(series, [float(value) if value else None for value in values])
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if child.tag in (f"{SVG}script", "script"):
                parent.remove(child)
    return ElementTree.tostring(tree, encoding="unicode")
