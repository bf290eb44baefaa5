"""The dashboard: drafts per state, live job progress, and the model-version charts with the
figures behind them, for every role, in a bounded number of queries."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from editorial import services
from editorial.models import Draft, GenerationJob
from tests.factories import DraftFactory, ModelVersionFactory, ProductFactory
from tests.test_metrics import T0, WARNING, chinese_product, generated, review

pytestmark = pytest.mark.django_db

HTMX_JOBS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "dashboard-jobs"}
XSS = "<script>alert(1)</script>"


def figure(html: str, chart_id: str) -> str:
    match = re.search(rf'<figure class="chart" id="{chart_id}">(.*?)</figure>', html, re.S)
    assert match, f"no {chart_id} chart on the page"
    return match.group(1)


def chart_row(chart: str, label: str) -> str:
    """The SVG group that draws ``label``'s bar."""
    svg = chart.split("</svg>")[0]
    for group in svg.split('<g class="chart-row')[1:]:
        if re.search(rf'class="chart-label"[^>]*>{re.escape(label)}</text>', group):
            return group
    raise AssertionError(f"no bar for {label!r}")


def table_row(chart: str, label: str) -> list[str]:
    """The cells of ``label``'s row in the chart's table alternative, as text."""
    for row in re.findall(r"<tr>(.*?)</tr>", chart, re.S):
        cells = [unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no table row for {label!r}")


def attr(fragment: str, element: str, name: str) -> float:
    match = re.search(rf'<{element}[^>]*\s{name}="([^"]+)"', fragment)
    assert match, f"no {element} with {name}"
    return float(match.group(1))


@pytest.fixture
def reviewed(editor, reviewer):
    """Version "a": approved as is (1 h), approved after a one-word edit (3 h), rejected, and a
    pending draft; version "b": one Chinese draft approved after a one-character edit (5 h)."""
    a = ModelVersionFactory(name="a")
    b = ModelVersionFactory(name="b")
    review(generated(a, "The quick brown fox", at=T0), editor, reviewer,
           at=T0 + timedelta(hours=1))
    review(generated(a, "The quick brown fox", at=T0), editor, reviewer,
           text="The quick red fox", at=T0 + timedelta(hours=3))
    review(generated(a, "The best kettle", flags={0: WARNING}), editor, reviewer,
           text="Rejected text", decision="reject")
    generated(a, "Pending text")
    review(generated(b, "不锈钢电水壶", at=T0, product=chinese_product()), editor,
           reviewer, text="不锈钢热水壶",
           at=T0 + timedelta(hours=5))
    return a, b


def test_acceptance_chart_draws_each_versions_rate_with_its_interval(client, editor, reviewed):
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    chart = figure(html, "chart-acceptance")
    assert 'role="img"' in chart
    assert '<title id="chart-acceptance-title">Acceptance rate per model version</title>' in chart

    bar = chart_row(chart, "a")
    assert "33% (1/3)" in bar
    # 300 units of plot for 0..100%, from x=150: 1/3 is 100 wide; Wilson 6.1%..79.2%.
    assert attr(bar, "rect", "width") == pytest.approx(100.0, abs=0.1)
    whisker = re.search(r'<g class="chart-whisker"[^>]*>\s*<line x1="([\d.]+)" x2="([\d.]+)"', bar)
    assert whisker, "no interval whisker"
    assert float(whisker.group(1)) == pytest.approx(150 + 300 * 0.06149, abs=0.1)
    assert float(whisker.group(2)) == pytest.approx(150 + 300 * 0.79234, abs=0.1)
    assert table_row(chart, "a") == ["a", "33.3%", "6.1–79.2%", "1 / 3"]

    assert "0% (0/1)" in chart_row(chart, "b")
    assert table_row(chart, "b") == ["b", "0.0%", "0.0–79.3%", "0 / 1"]


def test_edit_distance_chart_draws_word_and_character_distances(client, editor, reviewed):
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    chart = figure(html, "chart-edit-distance")
    assert "Mean edit distance per model version" in chart
    # "a": (0 + 1/4 words) / 2; "b": 1/6 characters. The axis runs 0..1 as "a"'s interval
    # reaches 1.
    assert "0.13 (n=2)" in chart_row(chart, "a")
    assert "0.17 (n=1)" in chart_row(chart, "b")
    assert attr(chart_row(chart, "b"), "rect", "width") == pytest.approx(300 / 6, abs=0.1)
    assert table_row(chart, "a")[:2] == ["a", "0.125"]
    assert table_row(chart, "b") == ["b", "0.167", "—", "1"]


def test_figures_table_lists_every_measure_per_version(client, reviewer, reviewed):
    client.force_login(reviewer)
    html = client.get(reverse("home")).content.decode()
    table = re.search(r'<table class="list metrics-table">(.*?)</table>', html, re.S).group(1)
    cells = table_row(table, "a")
    assert cells[1:3] == ["4", "3"]  # drafts generated, reviewed
    assert cells[3].startswith("33% (1/3)")
    assert cells[4].startswith("0.125")
    assert cells[5] == "2 h 0 min"  # median of 1 h and 3 h
    assert cells[6].startswith("25% (1/4)")  # one of four candidates has a warning
    assert cells[7].startswith("33% (1/3)")
    assert table_row(table, "b")[5] == "5 h 0 min"


def test_drafts_per_state_chart_links_each_bar_into_the_queue(client, editor):
    for _ in range(4):
        DraftFactory(state=Draft.State.READY)
    DraftFactory(state=Draft.State.IN_REVIEW)
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    chart = figure(html, "chart-states")
    assert '<title id="chart-states-title">Drafts by state</title>' in chart
    assert "5 drafts in all" in chart
    queue = reverse("draft_queue")
    assert f'<a href="{queue}?state=in_review" aria-label="In review: 1 draft">' in chart
    assert f'<a href="{queue}?state=ready" aria-label="Ready for edit: 4 drafts">' in chart
    # The axis ends at the largest count (a round number): 4 fills the 400 units, 1 a quarter.
    assert attr(chart_row(chart, "Ready for edit"), "rect", "width") == pytest.approx(400)
    assert attr(chart_row(chart, "In review"), "rect", "width") == pytest.approx(100)
    assert attr(chart_row(chart, "Approved"), "rect", "width") == 0
    assert table_row(chart, "Ready for edit") == ["Ready for edit", "4"]


def test_empty_dashboard_says_no_model_has_generated_yet(client, editor):
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    assert "No model version has generated drafts yet." in html
    assert 'id="chart-acceptance"' not in html and 'id="chart-edit-distance"' not in html
    assert 'id="chart-states"' in html


def test_before_any_review_the_charts_say_nothing_is_reviewed(client, editor):
    generated(ModelVersionFactory(name="fresh"), "Some text")
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    assert "Nothing has been approved or rejected yet." in html
    assert "No reviewed drafts yet." in html and "No approved drafts yet." in html
    assert 'id="chart-acceptance"' not in html
    table = re.search(r'<table class="list metrics-table">(.*?)</table>', html, re.S).group(1)
    assert table_row(table, "fresh")[1:4] == ["1", "0", "—"]


def test_a_version_without_approvals_shows_no_bar_next_to_one_with(client, editor, reviewer):
    reviewed_version = ModelVersionFactory(name="old")
    review(generated(reviewed_version, "Text"), editor, reviewer)
    generated(ModelVersionFactory(name="new"), "Text")
    client.force_login(editor)
    chart = figure(client.get(reverse("home")).content.decode(), "chart-acceptance")
    assert "no data yet" in chart_row(chart, "new") and "<rect" not in chart_row(chart, "new")
    assert "100% (1/1)" in chart_row(chart, "old")


def test_model_version_names_are_escaped_in_charts_and_tables(client, editor, reviewer):
    review(generated(ModelVersionFactory(name=XSS), "Text"), editor, reviewer)
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def count_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("home")).status_code == 200
    return len(queries)


def plant(n, versions, editor, reviewer):
    for i in range(n):
        draft = generated(versions[i % len(versions)], f"Model text number {i}")
        if i % 3 == 0:
            review(draft, editor, reviewer, text=f"Edited text number {i}")
        elif i % 3 == 1:
            review(draft, editor, reviewer, decision="reject", text=f"Rejected text {i}")


def test_dashboard_runs_the_same_number_of_queries_for_4_or_30_drafts(
    client, editor, reviewer, django_assert_max_num_queries
):
    versions = [ModelVersionFactory(name="v1", is_default=True), ModelVersionFactory(name="v2")]
    services.generation_job_request(
        products=[ProductFactory()], kinds=["description"], params={}, user=editor
    )
    # Each version has an approved draft from the start: a median costs a query per version.
    plant(4, versions, editor, reviewer)
    client.force_login(editor)
    few = count_queries(client)
    plant(30, versions, editor, reviewer)
    services.generation_job_request(
        products=ProductFactory.create_batch(5), kinds=["description"], params={}, user=editor
    )
    many = count_queries(client)
    assert few == many
    with django_assert_max_num_queries(few):
        client.get(reverse("home"))


# --- Jobs panel ---------------------------------------------------------------------------------


@pytest.fixture
def job(editor):
    ModelVersionFactory(name="default-model", is_default=True)
    return services.generation_job_request(
        products=[ProductFactory()], kinds=["description"], params={}, user=editor
    )


def test_running_jobs_poll_for_progress_on_the_dashboard(client, editor, job):
    client.force_login(editor)
    html = client.get(reverse("home")).content.decode()
    panel = re.search(r'<div id="dashboard-jobs"[^>]*>', html).group(0)
    assert 'hx-get="/"' in panel and 'hx-trigger="every 2s"' in panel
    assert f'aria-label="Job {job.pk} progress"' in html

    response = client.get(reverse("home"), **HTMX_JOBS)
    fragment = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in fragment and 'id="chart-states"' not in fragment
    assert fragment.lstrip().startswith('<div id="dashboard-jobs"')
    assert 'hx-trigger="every 2s"' in fragment


def test_jobs_panel_stops_polling_once_every_job_is_finished(client, editor, job):
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.SUCCEEDED, done=1)
    client.force_login(editor)
    response = client.get(reverse("home"), **HTMX_JOBS)
    fragment = response.content.decode()
    assert response.status_code == 286
    assert "hx-trigger" not in fragment
    assert "1 done" in fragment
    assert "hx-trigger" not in client.get(reverse("home")).content.decode().split(
        'id="dashboard-jobs"')[1].split(">")[0]


# --- Who sees it --------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    response = client.get(reverse("home"), **HTMX_JOBS)
    assert reverse("login") in response["HX-Redirect"]


def test_accounts_outside_the_copydesk_groups_get_403(client, outsider):
    client.force_login(outsider)
    assert client.get(reverse("home")).status_code == 403
    assert client.get(reverse("home"), **HTMX_JOBS).status_code == 403


@pytest.mark.parametrize("role", ["editor", "reviewer", "admin_user"])
def test_every_role_sees_the_charts(client, request, role, reviewed):
    client.force_login(request.getfixturevalue(role))
    html = client.get(reverse("home")).content.decode()
    for chart_id in ("chart-states", "chart-acceptance", "chart-edit-distance"):
        assert f'id="{chart_id}"' in html


def test_the_dashboard_refuses_posts(client, editor):
    client.force_login(editor)
    assert client.post(reverse("home")).status_code == 405
