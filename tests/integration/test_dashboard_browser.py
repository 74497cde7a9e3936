"""The dashboard in a real browser (Debian's headless Chromium, driven by Playwright) against
real web, worker and scheduler processes: sign in, watch a dead letter appear when an
endpoint fails, replay it and see it delivered; and the overview under load, on a laptop
and on a phone, saved as screenshots in test-artifacts/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from switchboard.stack import Stack
from tests.integration.stacks import ADMIN_TOKEN, Api
from tests.prerequisites import require_chromium
from tests.receivers import Answer, Hit, Receiver, ReceiverFactory, always, wait_delivered

#: Where the screenshots go: the repository's test-artifacts/ (not committed).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
#: The live parts of a page are fetched again every 5 s: a change shows within this.
SEEN_WITHIN_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def signed_in(browser: Browser, stack: Stack, viewport: dict[str, int]) -> Page:
    page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    page.goto(f"{stack.url}/dashboard")
    expect(page).to_have_url(f"{stack.url}/dashboard/login?next=/dashboard")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.url}/dashboard")
    return page


class Switch:
    """A receiver's behaviour: failing until told otherwise."""

    def __init__(self) -> None:
        self.healthy = threading.Event()

    def __call__(self, hit: Hit) -> Answer:
        if self.healthy.is_set():
            return Answer(200)
        return Answer(503, body=b"maintenance until noon")


def test_a_dead_letter_appears_is_replayed_and_is_delivered(
    browser: Browser, stack: Stack, api: Api, make_receiver: ReceiverFactory
) -> None:
    switch = Switch()
    receiver: Receiver = make_receiver(switch)
    channel = api.echo_channel(receiver.url)
    page = signed_in(browser, stack, LAPTOP)
    page.goto(f"{stack.url}/dashboard/dead-letters")
    expect(page.locator("#dead-letters tbody")).to_contain_text("No dead letters")

    assert api.send(channel, "browser-user", "hello").status_code == 202
    row = page.locator("#dead-letters tbody tr[data-delivery]")
    expect(row).to_have_count(1, timeout=SEEN_WITHIN_MS)  # it appears without a reload
    expect(row).to_contain_text("HTTP 503: maintenance until noon")
    expect(row).to_contain_text(channel["id"])
    delivery_id = row.get_attribute("data-delivery")
    assert delivery_id

    switch.healthy.set()
    row.get_by_role("button", name="Replay").click()
    expect(page.locator(".notice")).to_have_text("1 of 1 delivery(ies) queued again.")
    wait_delivered(receiver, 1)
    page.goto(f"{stack.url}/dashboard/deliveries/{delivery_id}")
    expect(page.locator("#delivery .status-delivered")).to_be_visible(timeout=SEEN_WITHIN_MS)
    attempts = page.locator("#delivery tbody tr")
    expect(attempts.last).to_contain_text("200")
    expect(attempts.first).to_contain_text("HTTP 503: maintenance until noon")
    page.get_by_role("link", name="browser-user").click()
    expect(page.locator(".transcript .actor-bot")).to_contain_text("You said: hello")


def test_the_overview_under_load_on_a_laptop_and_on_a_phone(
    browser: Browser, stack: Stack, api: Api, make_receiver: ReceiverFactory
) -> None:
    fine = api.echo_channel(make_receiver(always(200)).url)
    failing = api.echo_channel(make_receiver(always(500, body=b"upstream error")).url)
    page = signed_in(browser, stack, LAPTOP)
    stop = threading.Event()

    def send(n: int) -> None:
        channel = failing if n % 10 == 0 else fine
        if not stop.is_set():
            api.send(channel, f"load-{n % 40}", f"message {n}")

    with ThreadPoolExecutor(8) as pool:
        pending = [pool.submit(send, n) for n in range(1500)]
        # Live charts: lines drawn from the samples and the latest point, redrawn in place
        # without a reload (the scheduler samples every 10 s).
        for chart, points in (("chart-depths", 3), ("chart-rates", 2)):
            page.wait_for_function(
                f"document.querySelector('#{chart} polyline')"
                f"?.getAttribute('points').split(' ').length >= {points}",
                timeout=40_000,
            )
        expect(page.locator("#endpoints")).to_contain_text("HTTP 500: upstream error")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "dashboard-under-load.png", full_page=True)
        stop.set()
        for future in pending:
            future.result()
    # The failing endpoint's circuit opened: its queues wait, and the table says why.
    failing_row = page.locator(f"#endpoint-{failing['id']}")
    expect(failing_row).to_contain_text("circuit open", timeout=SEEN_WITHIN_MS)

    phone = signed_in(browser, stack, PHONE)
    phone.wait_for_selector("#chart-rates polyline", state="attached", timeout=SEEN_WITHIN_MS)
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"
    button = phone.locator("#endpoints button").first
    assert button.bounding_box() is not None
    phone.screenshot(path=ARTIFACTS / "dashboard-phone.png", full_page=True)
