"""The browser's own EventSource (Debian's Chromium) follows a purchase to its end with a
stream ticket, from a page of the service's origin, and stops: no reconnect loop.

A module of its own: Playwright's sync API holds the thread's event loop while its
browser is open, which the asynchronous fixtures of the other live tests need."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from service.app import create_app
from service.settings import Settings
from tests.demo.test_page import CHROMIUM_ARGS
from tests.live.streams import Replicas, serving_apps, ticket_for
from tests.live.test_standard_clients import PURCHASE, buy_to_the_end
from tests.onramp.conftest import new_wallet
from tests.support.processes import service_env
from tests.support.stripe import RunningStripe

T = TypeVar("T")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


# A page of the service's own origin (DAPP_DIR, at /app/, under the app's CSP) following
# the session named in its fragment with the browser's own EventSource; what it sees is
# written on its body, where the test reads it without running script in the page.
FOLLOW_PAGE = """<!doctype html><title>follow</title><body><script src="follow.js"></script>"""
FOLLOW_SCRIPT = """
const [id, ticket] = location.hash.slice(1).split(",");
const seen = document.body.dataset;
seen.statuses = "";
seen.errors = "0";
const source = new EventSource(`/api/v1/onramp/sessions/${id}/events?ticket=${ticket}`);
source.addEventListener("session", (event) => {
  const status = JSON.parse(event.data).status;
  seen.statuses = seen.statuses ? `${seen.statuses},${status}` : status;
});
source.addEventListener("error", () => {
  seen.errors = String(Number(seen.errors) + 1);
  if (source.readyState === EventSource.CLOSED) seen.closed = "true";
});
"""


def apart(work: Coroutine[Any, Any, T]) -> T:
    """`work` run to its end on an event loop of its own thread: Playwright's sync API
    holds this thread's."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


def test_the_browsers_own_eventsource_follows_a_purchase_and_stops(
    browser: Browser,
    make_settings: Callable[..., Settings],
    migrated: dict[str, str],
    stripe: RunningStripe,
    tmp_path: Path,
) -> None:
    database_url = migrated["sqlite"]
    (tmp_path / "index.html").write_text(FOLLOW_PAGE)
    (tmp_path / "follow.js").write_text(FOLLOW_SCRIPT)
    settings = make_settings(
        **service_env(database_url, stripe, LIVE_HEARTBEAT_SECONDS="0.3", DAPP_DIR=str(tmp_path))
    )
    with serving_apps([create_app(settings)]) as urls:
        replicas = Replicas(urls, new_wallet())

        async def prepare() -> tuple[dict[str, Any], str]:
            async with httpx.AsyncClient(timeout=10) as client:
                session = await replicas.create(client)
                return session, (await ticket_for(client, replicas, session))["ticket"]

        session, ticket = apart(prepare())
        page = browser.new_page()
        answers: list[int] = []
        page.on("response", lambda r: answers.append(r.status) if "/events" in r.url else None)
        page.goto(f"{urls[0]}/app/#{session['id']},{ticket}")
        page.locator('body[data-statuses="initialized"]').wait_for(state="attached", timeout=10_000)

        async def purchase() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                await buy_to_the_end(client, replicas, session, database_url)

        apart(purchase())
        body = page.locator('body[data-closed="true"]')
        body.wait_for(state="attached", timeout=15_000)
        statuses = body.get_attribute("data-statuses") or ""
        errors = body.get_attribute("data-errors")
        page.close()
    assert statuses.split(",") == ["initialized", *PURCHASE, "fulfillment_complete"]
    # The stream's end (the browser reconnects once), then its reconnect refused, its
    # ticket spent (it stops): no reconnect loop.
    assert errors == "2"
    assert answers == [200, 401]
