"""The dashboard of one project. It reads only the core's read-only MeteringService."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, render_template, request
from flask_login import login_required

from account.core_client import CoreError
from account.dashboard.chart import Metric, bar_chart, compact, daily_series
from account.dashboard.quick_start import quick_start
from account.web import context, owned_project, usd

bp = Blueprint("dashboard", __name__)

RANGES = {"7d": 7, "30d": 30, "90d": 90}
MAX_DAYS = 366

# What the chart can count, with the unit its axis is in.
METRICS = {
    "requests": Metric("requests", "requests", str),
    "cost": Metric("cost", "USD charged", usd),
    "tokens": Metric("tokens", "tokens (input + output)", compact),
}


def chosen_range() -> tuple[str, dt.date, dt.date, str | None]:
    """The chosen range: ?range=7d|30d|90d, or ?start=YYYY-MM-DD&end=YYYY-MM-DD (at most a year).

    A custom range that cannot be shown is refused with a reason, and the last 30 days shown instead.
    """
    today = dt.datetime.now(dt.timezone.utc).date()
    error = None
    if request.args.get("start") or request.args.get("end"):
        try:
            start = dt.date.fromisoformat(request.args.get("start", ""))
            end = dt.date.fromisoformat(request.args.get("end", ""))
        except ValueError:
            error = "Both dates are needed, as YYYY-MM-DD."
        else:
            if start > end:
                error = f"The start date {start} is after the end date {end}: swap them to see that range."
            elif (end - start).days > MAX_DAYS:
                error = "A range can be at most a year long."
            else:
                return "custom", start, end, None
    name = request.args.get("range", "30d")
    if name not in RANGES:
        name = "30d"
    return name, today - dt.timedelta(days=RANGES[name] - 1), today, error


def day_bounds(start_day: dt.date, end_day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC covering whole days."""
    return (dt.datetime.combine(start_day, dt.time(), dt.timezone.utc),
            dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), dt.timezone.utc))


def _metric_value(metric: str, row) -> int:
    if metric == "cost":
        return row.charged_micro_usd
    if metric == "tokens":
        return row.input_tokens + row.output_tokens
    return row.requests


@bp.get("/projects/<project_id>/dashboard")
@login_required
def show(project_id: str):
    project = owned_project(project_id)
    range_name, start_day, end_day, range_error = chosen_range()
    metric = request.args.get("metric", "requests")
    if metric not in METRICS:
        metric = "requests"
    start, end = day_bounds(start_day, end_day)
    core = context().core
    view = {"project": project, "range_name": range_name, "ranges": list(RANGES), "start": start_day,
            "end": end_day, "base_url": context().settings.api_base_url,
            "range_error": range_error, "metric": metric, "metrics": METRICS}
    try:
        balance = core.balance(project.id)
        by_day, total = core.usage(project.id, start, end, "day")
        by_model, _ = core.usage(project.id, start, end, "model")
        events = core.recent_events(project.id, start, end, limit=20)
        view["quick"] = quick_start(core.models(), balance)
        names = {k.id: k.name for k in core.list_keys(project.id)}
    except CoreError as exc:
        view["quick"] = quick_start([], None)
        return render_template("dashboard/show.html", core_error=str(exc), **view), 503
    unit = METRICS[metric].unit
    chart = bar_chart(daily_series({r.group: _metric_value(metric, r) for r in by_day}, start_day, end_day),
                      METRICS[metric], title=f"{unit.capitalize()} per day (UTC), {start_day} to {end_day}")
    return render_template("dashboard/show.html", core_error=None, balance=balance, total=total, chart=chart,
                           by_model=by_model, events=events, names=names, **view)
