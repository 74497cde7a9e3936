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
from tests.polling import wait_until
from tests.prerequisites import require_chromium
from tests.receivers import Answer, Hit, Receiver, ReceiverFactory, always, wait_delivered

#: Where the screenshots go: the repository's test-artifacts/ (not committed).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SMALL_PHONE = {"width": 375, "height": 667}
#: The live parts of a page are fetched again every 5 s: a change shows within this.
SEEN_WITHIN_MS = 20_000
#: How often the page asks again (REFRESH_MS in web/static/dashboard.js).
REFRESH_MS = 5000


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


def test_a_conversation_whose_id_is_a_dot_segment_opens_from_its_link(
    browser: Browser, stack: Stack, api: Api, make_receiver: ReceiverFactory
) -> None:
    receiver = make_receiver(always(200))
    channel = api.echo_channel(receiver.url)
    for session_id in (".", ".."):
        assert api.send(channel, session_id, f"hello {session_id}").status_code == 202
    wait_delivered(receiver, 2)
    page = signed_in(browser, stack, LAPTOP)
    for session_id in (".", ".."):
        page.goto(f"{stack.url}/dashboard/deliveries?endpointId={channel['id']}")
        page.get_by_role("link", name=session_id, exact=True).first.click()
        expect(page.locator("h1")).to_contain_text(f"Conversation {session_id}")
        expect(page.locator(".transcript .actor-bot")).to_contain_text(
            f"You said: hello {session_id}"
        )
    page.goto(f"{stack.url}/dashboard/conversations/")
    expect(page.locator(".notice.error")).to_be_visible()  # a page, not a JSON error


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


def test_a_page_whose_session_ends_says_so_and_stops_asking(browser: Browser, stack: Stack) -> None:
    page = signed_in(browser, stack, LAPTOP)
    page.clock.install()  # the page's timers run when the test says
    page.goto(f"{stack.url}/dashboard/deliveries?status=dead")
    page.context.clear_cookies()  # as a sign-out in another tab, or a revoked token, ends it
    page.clock.run_for(REFRESH_MS)
    notice = page.locator("#signed-out")
    expect(notice).to_contain_text("Signed out")
    link = notice.get_by_role("link", name="sign in again")
    expect(link).to_have_attribute(
        "href", "/dashboard/login?next=%2Fdashboard%2Fdeliveries%3Fstatus%3Ddead"
    )
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.clock.run_for(4 * REFRESH_MS)
    # A request of the test's own, after any the page would have made.
    assert page.evaluate("fetch('/dashboard/login').then((answer) => answer.status)") == 200
    assert asked == [f"{stack.url}/dashboard/login"]
    expect(notice).to_have_count(1)
    link.click()
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{stack.url}/dashboard/deliveries?status=dead")


def test_long_ids_and_errors_fit_a_phone_and_keep_rows_short(
    browser: Browser, stack: Stack, api: Api, make_receiver: ReceiverFactory
) -> None:
    failing = api.echo_channel(make_receiver(always(500, body=b"x" * 4000)).url)
    for n in range(2):
        assert api.send(failing, f"long-{n}", "hi").status_code == 202
    dead = wait_dead_letters(api, failing["id"], 2)
    phone = signed_in(browser, stack, SMALL_PHONE)
    pages = {
        "dead letters": f"{stack.url}/dashboard/dead-letters",
        "a delivery": f"{stack.url}/dashboard/deliveries/{dead[0]}",
        "an error": f"{stack.url}/dashboard/deliveries/msg_{'0' * 300}",
    }
    for what, url in pages.items():
        phone.goto(url)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{what}: the page is {overflow} px wider than a phone"
        spilling = phone.evaluate(
            "[...document.querySelectorAll('td, dd, h1, .notice')]"
            ".filter((e) => e.scrollWidth > e.clientWidth).map((e) => e.textContent.slice(0, 40))"
        )
        assert spilling == [], f"{what}: wider than their card: {spilling}"
    laptop = signed_in(browser, stack, {"width": 1280, "height": 800})
    for path, tallest in (
        ("/dashboard/dead-letters", 100),
        (f"/dashboard/deliveries/{dead[0]}", 250),
    ):
        laptop.goto(stack.url + path)
        heights = laptop.eval_on_selector_all(
            "tbody tr", "(rows) => rows.map((row) => row.getBoundingClientRect().height)"
        )
        assert heights and max(heights) < tallest, f"{path}: rows {heights} px tall"
    error = laptop.locator("#delivery td[data-label=Error]").first
    expect(error).to_contain_text("x" * 190)  # all of it, on the delivery's own page


def wait_dead_letters(api: Api, endpoint_id: str, count: int) -> list[str]:
    """The endpoint's dead letters' ids, once it has `count`."""

    def found() -> list[str]:
        items = api.get(f"/v1/dead-letters?endpointId={endpoint_id}").json()["items"]
        return [item["id"] for item in items] if len(items) == count else []

    return wait_until(found, SEEN_WITHIN_MS / 1000, 0.1, f"{count} dead letters")
