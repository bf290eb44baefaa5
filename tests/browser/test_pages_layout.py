"""Every page, as an admin sees it, at a laptop and a tablet size, in English and Chinese: no
sideways scrolling, the UI in the chosen language, a visible keyboard focus; a screenshot of each
is kept under test-artifacts/screenshots/."""

from urllib.parse import unquote

import pytest
from django.contrib.auth.models import User

from editorial.models import Candidate, FineTuneRun, GenerationJob
from tests.factories import ModelVersionFactory, UserFactory, draft_with_text

pytestmark = pytest.mark.django_db(transaction=True)

# A string of the page chrome in each language: proves the whole UI switched, not one label.
NAV_TEXT = {"en": "Products", "zh-hans": "商品"}


@pytest.fixture
def pages(live_server):
    UserFactory(username="ada", roles=["Admin"])
    model_version = ModelVersionFactory(name="smollm2-demo")
    draft = draft_with_text(
        "山岚茶舍安溪铁观音，传统炭焙，焙火香与兰花香交织，回甘明显。适合每天冲泡一壶。",
        product__sku="TEA-安溪-250",
        product__title="安溪铁观音·传统炭焙 250克 <img src=x onerror=alert(1)>",
        product__locale="zh-hans",
    )
    Candidate.objects.create(draft=draft, index=1, rank=1, model_version=model_version,
                             text="安溪铁观音，传统炭焙，回甘明显。")
    job = GenerationJob.objects.create(model_version=model_version,
                                       requested_by=User.objects.get(username="ada"))
    run = FineTuneRun.objects.create(
        name="smollm2-tea", base=model_version, status=FineTuneRun.Status.FAILED,
        phase=FineTuneRun.Phase.TRAINING, step=3, total_steps=10, loss=2.5,
        progress=[[1, 3.1], [2, 2.8], [3, 2.5]],
        error="The worker stopped while fine-tuning (killed, or out of memory).",
    )
    return {
        "dashboard": "/",
        "products": "/products/",
        "product": f"/products/{draft.product.sku}/",
        "jobs": "/jobs/",
        "job": f"/jobs/{job.pk}/",
        "queue": "/drafts/",
        "draft": f"/drafts/{draft.pk}/",
        "import": "/import/",
        "export": "/export/",
        "training": "/training/",
        "finetune": f"/training/finetune/{run.pk}/",
    }


# Chinese labels are shorter than English ones, so the laptop size in Chinese adds little.
@pytest.mark.parametrize(("viewport", "language"),
                         [("laptop", "en"), ("tablet", "en"), ("tablet", "zh-hans")])
def test_every_page_fits_and_speaks_the_language(log_in, live_server, screenshot, pages,
                                                 viewport, language):
    page = log_in("ada", "/", viewport=viewport, language=language)
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    problems = []
    for name, path in pages.items():
        response = page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        if response.status != 200 or unquote(page.url) != f"{live_server.url}{path}":
            problems.append(f"{name}: HTTP {response.status} at {page.url}")
            continue
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 1:
            problems.append(f"{name}: {overflow}px wider than the {viewport} viewport")
        if page.evaluate("document.documentElement.lang") != language:
            problems.append(f"{name}: <html lang> is not {language}")
        if NAV_TEXT[language] not in page.locator("header.site-header").inner_text():
            problems.append(f"{name}: header not in {language}")
        page.keyboard.press("Tab")
        focus = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return document.activeElement !== document.body &&"
            " (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0"
            "  || s.boxShadow !== 'none'); })()")
        if not focus:
            problems.append(f"{name}: the first Tab stop shows no focus ring")
        screenshot(page, f"page-{name}-{viewport}-{language}")
    assert not alerts, f"product data ran as script: {alerts}"
    assert not problems, "\n".join(problems)
