"""Building blocks shared by the dashboards: variables, queries, panels and their layout.

Every panel queries the `$datasource` variable, has a unit and a description, and filters by
the namespace, agent and region variables where the metric has those labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import (
    common,
    dashboard,
    heatmap,
    prometheus,
    stat,
    statetimeline,
    timeseries,
)
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from voicefleet_dashboards.promql import regex, selector

TAG = "voicefleet"
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Template-variable matchers; "All" expands to ".*", so they also match series without the label.
NAMESPACE = regex("namespace", "$namespace")
AGENT = regex("agent", "$agent")
REGION = regex("region", "$region")
FILTER: tuple[str, ...] = (NAMESPACE, AGENT, REGION)

# Grafana widens this to cover at least four scrape intervals.
RATE = "$__rate_interval"
REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

P = TypeVar("P", timeseries.Panel, stat.Panel, heatmap.Panel, statetimeline.Panel)


def filtered(metric: str, *matchers: str) -> str:
    """`metric{namespace=~"$namespace", agent=~"$agent", region=~"$region", ...}`."""
    return selector(metric, *FILTER, *matchers)


def query(expr: str, legend: str = "", *, instant: bool = False) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto")
    return target.instant() if instant else target.range()


def heatmap_query(expr: str) -> prometheus.Dataquery:
    """Buckets as a heatmap frame: Grafana orders them by `le`."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format("{{le}}")
        .format(prometheus_models.PromQueryFormat.HEATMAP)
        .range()
    )


def thresholds(*steps: tuple[float, str], base: str = "green") -> dashboard.ThresholdsConfig:
    config = dashboard.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE)
    return config.steps(
        [models.Threshold(value=None, color=base)]
        + [models.Threshold(value=value, color=color) for value, color in steps]
    )


def _describe(
    panel: P,
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    size: tuple[int, int],
) -> P:
    panel.title(title).description(description).unit(unit).datasource(DATASOURCE)
    panel.span(size[0]).height(size[1])
    for ref_id, target in zip(REF_IDS, queries, strict=False):
        panel.with_target(target.ref_id(ref_id))
    return panel


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    size: tuple[int, int] = (12, 8),
    bars: bool = False,
    limits: dashboard.ThresholdsConfig | None = None,
    minimum: float | None = 0,
) -> timeseries.Panel:
    panel = _describe(timeseries.Panel(), title, description, unit, queries, size)
    panel.line_width(1).fill_opacity(40 if bars else 10)
    panel.draw_style(
        common_models.GraphDrawStyle.BARS if bars else common_models.GraphDrawStyle.LINE
    )
    panel.show_points(common_models.VisibilityMode.NEVER)
    panel.legend(
        common.VizLegendOptions()
        .display_mode(common_models.LegendDisplayMode.LIST)
        .placement(common_models.LegendPlacement.BOTTOM)
        .show_legend(True)
    )
    panel.tooltip(
        common.VizTooltipOptions()
        .mode(common_models.TooltipDisplayMode.MULTI)
        .sort(common_models.SortOrder.DESCENDING)
    )
    if minimum is not None:
        panel.min(minimum)
    if limits is not None:
        # Threshold steps drawn as dashed lines: the SLO or alert level at a glance.
        panel.thresholds(limits).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(common_models.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    size: tuple[int, int] = (6, 6),
    limits: dashboard.ThresholdsConfig | None = None,
) -> stat.Panel:
    panel = _describe(stat.Panel(), title, description, unit, queries, size)
    panel.graph_mode(common_models.BigValueGraphMode.NONE)
    panel.color_mode(common_models.BigValueColorMode.VALUE)
    panel.reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if limits is not None:
        panel.thresholds(limits)
    return panel


def heatmap_panel(
    title: str, description: str, expr: str, *, size: tuple[int, int] = (12, 8)
) -> heatmap.Panel:
    """Latency distribution from histogram buckets (seconds on the y axis)."""
    panel = _describe(heatmap.Panel(), title, description, "s", [heatmap_query(expr)], size)
    panel.calculate(False).max_data_points(60)
    panel.y_axis(heatmap.YAxisConfig().unit("s"))
    panel.cell_values(heatmap.CellValues().unit("short"))
    panel.hide_from(common.HideSeriesConfig().legend(False).tooltip(False).viz(False))
    return panel


def state_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[prometheus.Dataquery],
    *,
    size: tuple[int, int] = (12, 8),
    limits: dashboard.ThresholdsConfig | None = None,
) -> statetimeline.Panel:
    panel = _describe(statetimeline.Panel(), title, description, unit, queries, size)
    panel.line_width(0).fill_opacity(70).show_value(common_models.VisibilityMode.NEVER)
    if limits is not None:
        panel.thresholds(limits)
    panel.color_scheme(dashboard.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
    return panel


def _query_variable(name: str, label: str, query_text: str) -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query_text)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text="All", value="$__all"))
    )


def variables(metric: str) -> list[Builder[models.VariableModel]]:
    """Data source, then namespace → agent → region, each narrowed by the ones before it."""
    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        _query_variable("namespace", "Namespace", f"label_values({metric}, namespace)"),
        _query_variable("agent", "Agent", f"label_values({selector(metric, NAMESPACE)}, agent)"),
        _query_variable(
            "region", "Region", f"label_values({selector(metric, NAMESPACE, AGENT)}, region)"
        ),
    ]


class Board:
    """A dashboard being assembled; panels are numbered in the order they were added."""

    def __init__(self, uid: str, title: str, description: str, variables_from: str) -> None:
        self.builder = (
            dashboard.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags([TAG])
            .time("now-6h", "now")
            .refresh("1m")
            .timezone("browser")
            .tooltip(models.DashboardCursorSync.CROSSHAIR)
            .variables(variables(variables_from))
            .link(
                dashboard.DashboardLink("voicefleet dashboards")
                .type(models.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
        )

    def variable(self, variable: Builder[models.VariableModel]) -> Board:
        self.builder.with_variable(variable)
        return self

    def row(self, title: str) -> Board:
        self.builder.with_row(dashboard.Row(title))
        return self

    def add(self, *panels: Builder[models.Panel]) -> Board:
        for panel in panels:
            self.builder.with_panel(panel)
        return self

    def build(self) -> models.Dashboard:
        board = self.builder.build()
        # Stable ids keep links to a panel (viewPanel=N) valid across regenerations.
        for number, panel in enumerate(board.panels or [], start=1):
            panel.id_val = number
        return board
