"""The dashboard of one project. It reads only the core's read-only MeteringService."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, render_template, request
from flask_login import login_required

from account.core_client import CoreError
from account.dashboard.chart import bar_chart, daily_series
from account.dashboard.quick_start import quick_start
from account.web import context, owned_project

bp = Blueprint("dashboard", __name__)

RANGES = {"7d": 7, "30d": 30, "90d": 90}


def _range() -> tuple[str, dt.date, dt.date]:
    """The chosen range: ?range=7d|30d|90d, or ?start=YYYY-MM-DD&end=YYYY-MM-DD (at most a year)."""
    today = dt.datetime.now(dt.timezone.utc).date()
    try:
        start = dt.date.fromisoformat(request.args.get("start", ""))
        end = dt.date.fromisoformat(request.args.get("end", ""))
        if start <= end and (end - start).days <= 366:
            return "custom", start, end
    except ValueError:
        pass
    name = request.args.get("range", "30d")
    if name not in RANGES:
        name = "30d"
    return name, today - dt.timedelta(days=RANGES[name] - 1), today


@bp.get("/projects/<project_id>/dashboard")
@login_required
def show(project_id: str):
    project = owned_project(project_id)
    range_name, start_day, end_day = _range()
    start = dt.datetime.combine(start_day, dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(end_day + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    core = context().core
    view = {"project": project, "range_name": range_name, "ranges": list(RANGES), "start": start_day,
            "end": end_day, "base_url": context().settings.api_base_url}
    try:
        balance = core.balance(project.id)
        by_day, total = core.usage(project.id, start, end, "day")
        by_model, _ = core.usage(project.id, start, end, "model")
        events = core.recent_events(project.id, start, end, limit=20)
        view["quick"] = quick_start(core.models(), balance)
    except CoreError as exc:
        view["quick"] = quick_start([], None)
        return render_template("dashboard/show.html", core_error=str(exc), **view), 503
    chart = bar_chart(daily_series({r.group: r.requests for r in by_day}, start_day, end_day),
                      title=f"Requests per day, {start_day} to {end_day}")
    return render_template("dashboard/show.html", core_error=None, balance=balance, total=total, chart=chart,
                           by_model=by_model, events=events, **view)
