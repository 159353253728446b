"""The dashboard reads balance and usage from the core's MeteringService."""
from __future__ import annotations

import datetime as dt
import re
import time

import openai

import pytest

from account.dashboard.chart import Bar, bar_chart, daily_series
from account.dashboard.views import METRICS
from tests.account.conftest import Browser
from tests.account.test_projects import create_key


def wait_for_requests(browser, project_id: str, count: int) -> str:
    deadline = time.monotonic() + 10
    while True:  # usage is written off the hot path, in batches
        page = browser.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
        if f'id="total-requests">{count}<' in page:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.1)


def test_dashboard_shows_balance_usage_by_day_and_model_and_recent_requests(browser, core):
    browser.sign_in_by_email("dash@example.com")
    [project_id] = browser.project_ids()
    empty = browser.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    assert 'id="free-requests">20<' in empty and "No requests yet" in empty

    secret, _ = create_key(browser, project_id)
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    for text in ("one two", "three four five"):  # a priced model: each spends a free request
        client.chat.completions.create(model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": text}])

    page = wait_for_requests(browser, project_id, 2)
    assert 'id="free-requests">18<' in page
    assert 'id="balance">$0.00<' in page
    model_rows = re.search(r'<table id="by-model"[^>]*>(.*?)</table>', page, re.S).group(1)
    assert "openai/gpt-4.1-mini" in model_rows and '<td class="num" data-label="Requests">2</td>' in model_rows
    recent = re.search(r'<table id="recent" class="events stacked">(.*?)</table>', page, re.S).group(1)
    assert recent.count('<tr class="ok">') == 2 and "chat/completions" in recent and ">200<" in recent
    assert "laptop" in recent, "each request names its key"
    assert "one two" not in page and "three four five" not in page, "the dashboard never shows content"
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert f"<title>{today}: 2 requests</title>" in page, "today's bar in the SVG chart"
    assert core.base_url in page and "from openai import OpenAI" in page and "curl " in page


def test_range_choice(browser):
    browser.sign_in_by_email("range@example.com")
    [project_id] = browser.project_ids()
    week = browser.get(f"/projects/{project_id}/dashboard?range=7d").get_data(as_text=True)
    assert week.count('class="bar"') == 7 * 2  # a wide and a narrow drawing
    custom = browser.get(f"/projects/{project_id}/dashboard?start=2026-01-01&end=2026-01-10").get_data(as_text=True)
    assert custom.count('class="bar"') == 10 * 2 and "2026-01-01 to 2026-01-10" in custom
    nonsense = browser.get(f"/projects/{project_id}/dashboard?range=5y&start=x").get_data(as_text=True)
    assert nonsense.count('class="bar"') == 30 * 2


def test_core_down_dashboard_says_so_and_other_pages_still_work(make_app, smtp, settings):
    browser = Browser(make_app(), smtp)
    browser.sign_in_by_email("outage@example.com")
    [project_id] = browser.project_ids()
    down = Browser(make_app(core="127.0.0.1:1", core_timeout=1.0), smtp)
    down.client = down.app.test_client()
    down.client.set_cookie(down.app.config["SESSION_COOKIE_NAME"],
                           browser.client.get_cookie(browser.app.config["SESSION_COOKIE_NAME"]).value)
    dashboard = down.get(f"/projects/{project_id}/dashboard")
    assert dashboard.status_code == 503
    body = dashboard.get_data(as_text=True)
    assert "Usage is unavailable right now" in body and "not reachable" in body
    assert "Quick start" in body
    assert down.get("/projects").status_code == 200
    keys = down.get(f"/projects/{project_id}")
    assert keys.status_code == 503 and "Keys cannot be shown" in keys.get_data(as_text=True)
    assert down.get("/healthz").status_code == 200
    refused = down.submit(f"/projects/{project_id}", "/projects", {"name": "Later"})
    assert refused.status_code == 503 and "nothing was changed" in refused.get_data(as_text=True)
    assert down.project_ids() == [project_id]


def test_daily_series_fills_missing_days_with_zero():
    bars = daily_series({"2026-03-02": 5}, dt.date(2026, 3, 1), dt.date(2026, 3, 3))
    assert bars == [Bar("2026-03-01", 0), Bar("2026-03-02", 5), Bar("2026-03-03", 0)]


def test_bar_chart_scales_bars_to_a_round_axis_and_escapes_labels():
    svg = str(bar_chart([Bar("2026-03-01", 3), Bar("2026-03-02", 10)], METRICS["requests"], title="<usage>"))
    wide = svg[:svg.index("</svg>")]
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([\d.]+)"', wide)]
    assert heights[1] == pytest.approx(179.0) and heights[0] == pytest.approx(179.0 * 0.3)  # axis top 10, plot 179 px
    assert "&lt;usage&gt;" in svg and "<usage>" not in svg
    assert re.findall(r'class="axis" x="[\d.]+" y="[\d.]+" text-anchor="end">([^<]*)<', wide) == ["0", "5", "10"]


def test_empty_chart_axis_reads_0_and_1_never_1_0_0():
    svg = str(bar_chart([Bar("2026-03-01", 0)], METRICS["requests"], title="t"))
    wide = svg[:svg.index("</svg>")]
    assert re.findall(r'text-anchor="end">([^<]*)<', wide) == ["0", "1"]


def test_chart_switches_to_cost_and_tokens_with_their_unit(browser):
    browser.sign_in_by_email("metric@example.com")
    [project_id] = browser.project_ids()
    cost = browser.get(f"/projects/{project_id}/dashboard?metric=cost").get_data(as_text=True)
    assert "USD charged per day" in cost and ">$0.00<" in cost
    tokens = browser.get(f"/projects/{project_id}/dashboard?metric=tokens&range=7d").get_data(as_text=True)
    assert "tokens (input + output) per day" in tokens and tokens.count('class="bar"') == 14
    plain = browser.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    assert "requests per day" in plain and 'aria-current="true">requests<' in plain


def test_reversed_date_range_is_refused_clearly(browser):
    browser.sign_in_by_email("reversed@example.com")
    [project_id] = browser.project_ids()
    page = browser.get(f"/projects/{project_id}/dashboard?start=2026-02-10&end=2026-02-01").get_data(as_text=True)
    assert 'id="range-error"' in page and "2026-02-10 is after the end date 2026-02-01" in page
    assert page.count('class="bar"') == 30 * 2, "the last 30 days are shown instead, and said so"


def test_usd_formatting():
    from account.web import usd

    assert [usd(v) for v in (0, 12_340_000, 1_500_000, 1, -2_000_000, 1_234_567_000_000)] == [
        "$0.00", "$12.34", "$1.50", "$0.000001", "-$2.00", "$1,234,567.00"]
