"""The web UI in a real browser (Debian's chromium) against the real API over a trained platform.

Every page must render with no console error and no request leaving the API's host (the
`ui_page` fixture fails the test otherwise); screenshots go to tests/ui/screenshots.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from ui_support import API_KEY, PLOTTED, SECOND_LEARN, screenshot

from coelho_pipelines.use_cases import get_spec

pytestmark = [pytest.mark.services, pytest.mark.slow]

PAGES = ["/ui/"] + [f"/ui/{uc}/{area}" for uc in ("tfd", "eta", "ecci")
                    for area in ("incremental", "batch", "sql")]  # fmt: skip
TIMEOUT = 60_000


@pytest.fixture(scope="module")
def ready(ui_trained: Any, api_url: str, dagster_web: str) -> str:
    """The trained platform, the API and Dagster, all up: the API's URL."""
    return api_url


def _open(page: Any, url: str) -> None:
    page.goto(url, wait_until="networkidle", timeout=TIMEOUT)


def _plot_traces(page: Any, selector: str) -> list[dict[str, Any]]:
    """The Plotly traces drawn in the chart under `selector`: name, type and point count."""
    page.wait_for_selector(f"{selector} .js-plotly-plot .main-svg", timeout=TIMEOUT)
    return page.eval_on_selector(
        f"{selector} .js-plotly-plot",
        """el => el.data.map(t => ({name: t.name ?? null, type: t.type,
            points: (t.x ?? t.lon ?? t.z ?? []).length}))""",
    )


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_without_console_errors(ready: str, ui_page: Any, path: str) -> None:
    page, problems = ui_page
    _open(page, ready + path)
    page.wait_for_selector("main h1", timeout=TIMEOUT)
    assert page.title().startswith("Coelho")
    assert page.locator("nav a").count() >= 10  # overview + 3 use cases x 3 areas
    page.wait_for_timeout(1500)  # late errors (charts, streams)
    screenshot(page, "page" + path.replace("/", "-").rstrip("-"))
    problems.check()


def test_overview_shows_each_product(ready: str, ui_page: Any, ui_trained: Any) -> None:
    page, problems = ui_page
    _open(page, ready + "/ui/")
    for uc in ("tfd", "eta", "ecci"):
        card = page.locator(f"[data-testid=product-{uc}]")
        card.wait_for(timeout=TIMEOUT)
        text = card.inner_text()
        assert "FINISHED" in text  # the learner ran and stopped at its event budget
        assert f"{SECOND_LEARN:,}" in text  # events learned
        assert re.search(r"as of \d+ (s|min) ago", text), text
        assert "champion" in text and "no champion yet" not in text
    # The second refresh (5 s) gives the rates: the learners have finished, 0 events/s.
    page.wait_for_function("!document.body.innerText.includes('measuring')", timeout=TIMEOUT)
    assert page.locator("[data-testid=product-tfd] .metric .value").nth(2).inner_text() == "0"
    screenshot(page, "overview")
    problems.check()


def test_tfd_incremental_history_tabs_and_report(ready: str, ui_page: Any) -> None:
    page, problems = ui_page
    _open(page, ready + "/ui/tfd/incremental")
    traces = _plot_traces(page, "[data-testid=history]")
    assert traces[0]["name"] == "FBeta" and traces[0]["points"] >= 10, traces
    assert {"promotion"} <= {t["name"] for t in traces}, traces  # the batch champion's promotion
    cards = page.locator("[data-testid=metric-cards]").text_content()
    assert "FBeta ★" in cards and "ROCAUC" in cards
    bar = page.locator("[data-testid=refresh-bar]")
    assert "server-sent events" in bar.inner_text()  # live updates stream from the API
    bar.locator("button[aria-label=Pause]").click()
    assert "paused" in bar.inner_text()
    bar.locator("button[aria-label=Resume]").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=refresh-bar]').innerText.includes('server-sent')"
    )
    page.wait_for_timeout(1000)
    screenshot(page, "tfd-incremental")

    page.click("[data-tab=report]")
    assert "tab=report" in page.url
    heatmap = _plot_traces(page, "[data-testid=confusion-matrix]")
    assert heatmap[0]["type"] == "heatmap" and heatmap[0]["points"] == 2
    assert "threshold in force" in page.locator("[data-testid=confusion-matrix]").inner_text()
    _plot_traces(page, "[data-testid=classification-report]")
    screenshot(page, "tfd-report")

    page.click("[data-tab=leaderboard]")
    page.locator("[data-testid=leaderboard]").wait_for()
    assert "tab=leaderboard" in page.url

    page.reload(wait_until="networkidle")  # the tab is in the URL
    assert page.locator("[data-tab=leaderboard]").get_attribute("aria-selected") == "true"
    problems.check()


@pytest.mark.parametrize("uc", ["tfd", "eta", "ecci"])
def test_prediction_round_trips_with_both_models(ready: str, ui_page: Any, uc: str) -> None:
    page, problems = ui_page
    _open(page, f"{ready}/ui/{uc}/incremental?tab=predict")
    form = page.locator("[data-testid=predict-form]")
    form.locator("text=Filled from a recent event").wait_for(timeout=TIMEOUT)
    assert form.locator("input[name=is_fraud]").count() == 0  # label fields are hidden
    form.locator("button[type=submit]").click()
    live = page.locator("[data-testid=answer-live]")
    batch = page.locator("[data-testid=answer-batch]")
    live.locator("dt:has-text('model_source')").wait_for(timeout=TIMEOUT)
    batch.locator("dt:has-text('model_source')").wait_for(timeout=TIMEOUT)
    assert "live" in live.inner_text()
    assert "mlflow" in batch.inner_text()
    answer = get_spec(uc).prediction_key
    assert answer in live.inner_text() and answer in batch.inner_text()
    if uc == "eta":
        screenshot(page, "eta-predict")
    problems.check()


def test_eta_map_holds_the_outlines_and_two_markers(ready: str, ui_page: Any) -> None:
    page, problems = ui_page
    _open(page, ready + "/ui/eta/incremental?tab=predict")
    page.locator("text=Filled from a recent event").wait_for(timeout=TIMEOUT)
    traces = _plot_traces(page, "[data-testid=eta-map]")
    outline_points = int(page.get_attribute("[data-testid=eta-map]", "data-points"))
    by_name = {t["name"]: t for t in traces}
    assert by_name["counties"]["type"] == "scattergeo"
    assert by_name["counties"]["points"] == outline_points > 100
    assert by_name["origin"]["points"] == 1 and by_name["destination"]["points"] == 1
    # Drawn, not just configured: the outline path and the two marker points are in the SVG.
    page.wait_for_selector("[data-testid=eta-map] .geolayer path.js-line", timeout=TIMEOUT)
    assert page.locator("[data-testid=eta-map] .geolayer path.point").count() == 2
    problems.check()


def test_ecci_segments(ready: str, ui_page: Any) -> None:
    page, problems = ui_page
    _open(page, ready + "/ui/ecci/incremental?tab=segments")
    sizes = _plot_traces(page, "[data-testid=segments] .card:first-child")
    assert sizes[0]["type"] == "bar" and sizes[0]["points"] >= 2
    profiles = page.locator("[data-testid=segments] select")
    assert profiles.locator("option").count() >= 2  # categorical features from the OpenAPI doc
    problems.check()


def test_run_picker_loads_metrics_and_plots(ready: str, ui_page: Any, ui_trained: Any) -> None:
    page, problems = ui_page
    run_id = ui_trained.batch_runs[PLOTTED]
    _open(page, f"{ready}/ui/{PLOTTED}/batch")
    picker = page.locator("[data-testid=run-picker]")
    picker.locator("text=★").first.wait_for(timeout=TIMEOUT)  # the champion, first (best)
    assert picker.locator("li").count() >= 2
    page.locator("[data-testid=run-metrics] .metric").first.wait_for(timeout=TIMEOUT)
    assert "mae ★" in page.locator("[data-testid=run-metrics]").text_content()
    gallery = page.locator("[data-testid=plot-gallery]")
    gallery.locator("img").first.wait_for(timeout=TIMEOUT)
    assert f"run={run_id}" in page.url or page.url.endswith("/batch")

    def loaded_images() -> int:
        return page.eval_on_selector_all(
            "[data-testid=plot-gallery] img",
            "imgs => Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth, () => 0)))"
            ".then(ws => ws.filter(w => w > 0).length)",
        )

    assert loaded_images() >= 1
    tabs = gallery.locator(".tabs button")
    assert tabs.count() >= 2
    first_tab = tabs.nth(0).inner_text()
    tabs.nth(1).click()
    assert f"tab={tabs.nth(1).inner_text()}" in page.url and first_tab not in page.url
    gallery.locator("img").first.wait_for(timeout=TIMEOUT)
    assert loaded_images() >= 1
    screenshot(page, "eta-batch")

    # Side by side: the other run next to the champion (it has no plots: "not in" shows).
    picker.locator("button.vs").first.click()
    assert "compare=" in page.url
    gallery.locator("figure.pair").first.wait_for(timeout=TIMEOUT)
    problems.check()


def test_retrain_launches_a_dagster_run(ready: str, ui_page: Any, dagster_web: str) -> None:
    page, problems = ui_page
    _open(page, ready + "/ui/tfd/batch")
    page.click("[data-testid=retrain] button")
    status = page.locator("[data-testid=retrain-status]")
    status.wait_for(timeout=TIMEOUT)
    assert status.inner_text() in {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "SUCCESS"}
    link = page.get_attribute("[data-testid=retrain-link]", "href")
    assert link.startswith(f"{dagster_web}/runs/")
    run_id = link.rsplit("/", 1)[-1]
    # The run exists in Dagster, for the job we asked for.
    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { jobName status } } }"
    body = httpx.post(
        f"{dagster_web}/graphql", json={"query": query, "variables": {"id": run_id}}, timeout=30
    ).json()
    assert body["data"]["runOrError"]["jobName"] == "tfd_batch_training"
    problems.check()


def test_sql_templates_fill_the_table_and_hostile_queries_are_refused(
    ready: str, ui_page: Any, ui_trained: Any
) -> None:
    page, problems = ui_page
    _open(page, ready + "/ui/tfd/sql")
    page.locator("[data-testid=schema] code").first.wait_for(timeout=TIMEOUT)
    assert "is_fraud" in page.locator("[data-testid=schema]").inner_text()

    page.click("[data-testid=templates] button:has-text('Row count')")
    result = page.locator("[data-testid=sql-result]")
    result.locator("tbody tr").first.wait_for(timeout=TIMEOUT)
    # The session's Kafka topic may hold other tests' events too: every one was ingested.
    rows = httpx.get(f"{ready}/api/v1/sql/tfd/schema", timeout=60).json()["row_count"]
    assert rows >= len(ui_trained.events["tfd"])
    assert result.locator("tbody td").first.inner_text() == str(rows)

    page.click("[data-testid=templates] button:has-text('Latest events')")
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=sql-result] tbody tr').length === 25"
    )
    assert "page 1 / 2" in result.inner_text()  # 50 rows, 25 a page
    result.locator("button:has-text('Next')").click()
    assert "page 2 / 2" in result.inner_text()
    result.locator("th button:has-text('amount')").click()
    amounts = [float(a) for a in _column(page, "amount")]
    assert amounts == sorted(amounts)
    screenshot(page, "tfd-sql")

    problems.allowed_errors.append("status of 400")  # the refusal's HTTP status, logged
    page.fill("textarea", "DROP TABLE data")
    page.click("[data-testid=run-query]")
    refusal = page.locator("[data-testid=sql-error]")
    refusal.wait_for(timeout=TIMEOUT)
    assert refusal.inner_text().startswith("Refused:") and len(refusal.inner_text()) > 15
    assert page.locator("[data-testid=sql-result]").count() == 0
    problems.check()


def _column(page: Any, name: str) -> list[str]:
    headers = page.locator("[data-testid=sql-result] thead th").all_inner_texts()
    index = next(i for i, h in enumerate(headers) if h.strip().startswith(name))
    return page.eval_on_selector_all(
        f"[data-testid=sql-result] tbody tr td:nth-child({index + 1})",
        "cells => cells.map(c => c.innerText)",
    )


def test_api_key_is_asked_for_then_sent(
    ui_trained: Any, keyed_api_url: str, keyed_page: Any
) -> None:
    page, problems = keyed_page
    problems.allowed_errors.append("status of 401")  # the calls made before the key is known
    _open(page, f"{keyed_api_url}/ui/{PLOTTED}/batch")
    prompt = page.locator("[data-testid=api-key]")
    prompt.wait_for(timeout=TIMEOUT)
    prompt.locator("input").fill(API_KEY)
    prompt.locator("button").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-testid=api-key]").count() == 0
    page.locator("[data-testid=run-picker] li").first.wait_for(timeout=TIMEOUT)
    image = page.locator("[data-testid=plot-gallery] img").first
    image.wait_for(timeout=TIMEOUT)
    assert image.get_attribute("src").startswith("blob:")  # fetched with the key
    assert page.eval_on_selector(
        "[data-testid=plot-gallery] img", "i => i.decode().then(() => i.naturalWidth)"
    )
    # Before the key: only the refused calls (401) were logged; from now on, nothing.
    assert all("status of 401" in e for e in problems.console_errors), problems.console_errors
    problems.console_errors.clear()
    problems.allowed_errors.clear()
    _open(page, f"{keyed_api_url}/ui/tfd/incremental")
    bar = page.locator("[data-testid=refresh-bar]")
    page.locator("[data-testid=metric-cards]").wait_for(timeout=TIMEOUT)
    assert "auto-refresh" in bar.inner_text()  # EventSource cannot send the key: polling
    problems.check()
