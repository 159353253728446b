"""Every request of a project, successful or refused: a filtered, paged list, a CSV export and
a page for one request id. Metadata only, as the core's MeteringService returns it."""
from __future__ import annotations

import csv
import io
import re

from flask import Response, abort, redirect, render_template, request, stream_with_context, url_for
from flask_login import login_required

from account.core_client import CoreError, CoreNotFound, EventFilter, UsageEvent
from account.dashboard.error_codes import meaning
from account.dashboard.views import bp, chosen_range, day_bounds
from account.web import context, owned_project

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
EXPORT_PAGE = 500
EXPORT_MAX_ROWS = 100_000
STATUS_CHOICES = {"": "any status", "ok": "succeeded", "error": "failed", "401": "401", "402": "402",
                  "404": "404", "429": "429", "502": "502", "503": "503"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
CSV_FIELDS = ("time_utc", "request_id", "key_id", "key_name", "model", "requested_model", "provider", "endpoint",
              "stream", "status", "error_code", "input_tokens", "output_tokens", "cached_input_tokens",
              "reasoning_tokens", "estimated", "cost_usd", "charged_usd", "ttfb_ms", "latency_ms")


def _filter() -> EventFilter:
    status = request.args.get("status", "")
    return EventFilter(status=status if status in STATUS_CHOICES else "",
                       model=request.args.get("model", "")[:200], key_id=request.args.get("key", "")[:64])


def _key_names(project_id: str) -> dict[str, str]:
    return {k.id: k.name for k in context().core.list_keys(project_id)}


@bp.get("/projects/<project_id>/requests")
@login_required
def requests(project_id: str):
    project = owned_project(project_id)
    range_name, start_day, end_day, range_error = chosen_range()
    start, end = day_bounds(start_day, end_day)
    where = _filter()
    token = request.args.get("page", "")
    per_page = request.args.get("per_page", type=int) or PAGE_SIZE
    per_page = min(max(per_page, 1), MAX_PAGE_SIZE)
    core = context().core
    view = {"project": project, "where": where, "statuses": STATUS_CHOICES, "range_name": range_name,
            "start": start_day, "end": end_day, "range_error": range_error}
    shown_before = max(request.args.get("at", type=int) or 0, 0) if token else 0
    try:
        names = _key_names(project.id)
        by_model, _ = core.usage(project.id, start, end, "model")
        events, next_token = core.events(project.id, start, end, per_page, token, where)
        total = _total(project.id, start, end, where, by_model)
    except CoreError as exc:
        return render_template("dashboard/requests.html", core_error=str(exc), **view), 503
    args = {k: v for k, v in request.args.items() if k not in ("page", "at")}
    return render_template(
        "dashboard/requests.html", core_error=None, events=events, names=names,
        models=sorted(r.group for r in by_model if r.group), first_page=not token,
        total=total, first_shown=shown_before + 1, last_shown=shown_before + len(events),
        newest_url=url_for("dashboard.requests", project_id=project.id, **args),
        older_url=url_for("dashboard.requests", project_id=project.id, page=next_token,
                          at=shown_before + len(events), **args) if next_token else None,
        csv_url=url_for("dashboard.requests_csv", project_id=project.id, **args), **view)


def _total(project_id: str, start, end, where: EventFilter, by_model) -> int | None:
    """How many requests the filter matches, from the usage summaries; None where they cannot say
    (an exact status code, or the key and model filters together)."""
    if where.status not in ("", "ok", "error") or (where.key_id and where.model):
        return None
    rows = by_model
    if where.key_id:
        rows, _ = context().core.usage(project_id, start, end, "key")
        rows = [r for r in rows if r.group == where.key_id]
    elif where.model:
        rows = [r for r in rows if r.group == where.model]
    requests_, errors = sum(r.requests for r in rows), sum(r.errors for r in rows)
    return {"": requests_, "error": errors, "ok": requests_ - errors}[where.status]


@bp.get("/projects/<project_id>/requests.csv")
@login_required
def requests_csv(project_id: str):
    """The filtered requests as CSV: metadata columns only, never content."""
    project = owned_project(project_id)
    _, start_day, end_day, _ = chosen_range()
    start, end = day_bounds(start_day, end_day)
    where = _filter()
    core = context().core
    try:
        names = _key_names(project.id)
        first, token = core.events(project.id, start, end, EXPORT_PAGE, "", where)
    except CoreError:
        abort(503)

    def rows():
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_FIELDS)
        page, next_token, written = first, token, 0
        while True:
            for e in page:
                writer.writerow(_csv_row(e, names))
            written += len(page)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if not next_token or written >= EXPORT_MAX_ROWS:
                return
            page, next_token = core.events(project.id, start, end, EXPORT_PAGE, next_token, where)

    filename = f"onekey-requests-{start_day}-{end_day}.csv"
    return Response(stream_with_context(rows()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _micro(micro: int) -> str:
    whole, frac = divmod(micro, 1_000_000)
    return f"{whole}.{frac:06d}"


def _csv_row(e: UsageEvent, names: dict[str, str]) -> list:
    return [e.time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), e.request_id, e.key_id, _safe_cell(names.get(e.key_id, "")),
            e.model, e.requested_model, e.provider, e.endpoint, str(e.stream).lower(), e.status, e.error_code,
            e.input_tokens, e.output_tokens, e.cached_input_tokens, e.reasoning_tokens, str(e.estimated).lower(),
            _micro(e.cost_micro_usd), _micro(e.charged_micro_usd), e.ttfb_ms if ttfb_shown(e) else "", e.latency_ms]


def _safe_cell(text: str) -> str:
    """A user-chosen name, defused for spreadsheets (no formula injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/projects/<project_id>/requests/<request_id>")
@login_required
def request_page(project_id: str, request_id: str):
    """One request by the id a client saw in `x-onekey-request-id`."""
    project = owned_project(project_id)
    if not _REQUEST_ID.match(request_id):
        return _no_such_request(project, request_id[:64])
    try:
        event = context().core.request_usage(project.id, request_id)
        names = _key_names(project.id)
    except CoreNotFound:
        return _no_such_request(project, request_id)
    except CoreError as exc:
        return render_template("error.html", title="Not available", message=f"{exc}. Try again in a minute.",
                               back=url_for("dashboard.requests", project_id=project.id)), 503
    return render_template("dashboard/request.html", project=project, e=event, key_name=names.get(event.key_id, ""),
                           meaning=meaning(event.error_code))


def _no_such_request(project, request_id: str):
    return render_template("error.html", title="Request not found",
                           message=f"No request with id {request_id} in this project. Check the id (from the "
                                   "x-onekey-request-id header) and the project.",
                           back=url_for("dashboard.requests", project_id=project.id)), 404


def ttfb_shown(e: UsageEvent) -> bool:
    """A refused request never reached a provider: it has no time to first byte (shown '—', empty in CSV)."""
    return not (e.status >= 400 and e.ttfb_ms == 0)


@bp.get("/projects/<project_id>/find-request")
@login_required
def find_request(project_id: str):
    """The search box: go to the request page of the id typed in."""
    project = owned_project(project_id)
    request_id = request.args.get("id", "").strip()
    if not _REQUEST_ID.match(request_id):
        return _no_such_request(project, request_id[:64])
    return redirect(url_for("dashboard.request_page", project_id=project.id, request_id=request_id))
