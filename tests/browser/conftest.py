import os
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("COPYDESK_CHROMIUM", "/usr/bin/chromium")

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# browser steps are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # Two shared cores run the live server, Chromium and the test: Playwright's 5 s default
    # for an assertion to come true is tight there; a real failure still fails, only later.
    expect.set_options(timeout=10_000)

    if not Path(CHROMIUM).exists():
        raise AssertionError(f"{CHROMIUM} is missing: apt-get install -y chromium fonts-noto-cjk")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def screenshot():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return take


PASSWORD = "pw-Copydesk-1"  # tests.factories.UserFactory's
VIEWPORTS = {"laptop": (1280, 800), "tablet": (768, 1024)}


@pytest.fixture
def log_in(browser, live_server):
    """``log_in(username, path="/drafts/", viewport="laptop", language=None)``: a new browser
    context logged in through the login form, on ``path`` once it has loaded."""
    contexts = []

    def open_page(username: str, path: str = "/drafts/", viewport: str = "laptop",
                  language: str | None = None):
        width, height = VIEWPORTS[viewport]
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        if language:
            context.add_cookies([{"name": "django_language", "value": language,
                                  "url": live_server.url}])
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/?next={path}")
        page.locator("input[name=username]").fill(username)
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("input[name=password]").press("Enter")
        # Loaded: the deferred scripts have run, so htmx and the shortcuts are live.
        page.wait_for_url(f"{live_server.url}{path}", wait_until="load")
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def htmx_settled():
    """``htmx_settled(page)`` waits until htmx has wired up what it last swapped in. htmx binds
    the triggers of new content only after its settle delay, so a test that types into a field
    the moment it appears can type before the field's ``hx-trigger`` listens."""

    def wait(page) -> None:
        page.wait_for_function(
            "() => !document.querySelector('.htmx-added, .htmx-settling, .htmx-swapping')"
        )

    return wait
