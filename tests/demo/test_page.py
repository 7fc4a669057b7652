"""The /demo page in headless Chromium (Debian's), against the real app and database."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from service.app import create_app
from service.demo.local_servers import serve_in_thread
from service.settings import DatabaseSettings, Settings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def insert_session(url: str) -> str:
    session_id = "ors_01" + "".join(
        secrets.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(24)
    )
    engine = create_engine(DatabaseSettings(DATABASE_URL=url).sync_url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO onramp_sessions (id, wallet_address, stripe_session_id, livemode,"
                " status, source_amount, source_currency, destination_currency,"
                " destination_network, delivery_status, delivery_confirmations, created_at,"
                " updated_at) VALUES (:id, '0x52908400098527886E0F7030069857D2E4169EE7',"
                " :sid, false, 'fulfillment_complete', '100.00', 'usd', 'musd', 'mezo',"
                " 'pending', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"id": session_id, "sid": f"cos_{secrets.token_hex(8)}"},
        )
    engine.dispose()
    return session_id


def confirm(url: str, session_id: str) -> None:
    engine = create_engine(DatabaseSettings(DATABASE_URL=url).sync_url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE onramp_sessions SET delivery_status = 'confirmed',"
                " delivery_detail = '1 confirmation' WHERE id = :id"
            ),
            {"id": session_id},
        )
    engine.dispose()


def test_the_demo_page_shows_sessions_and_follows_their_delivery_live(
    browser: Browser, make_settings: Callable[..., Settings], migrated: dict[str, str]
) -> None:
    url = migrated["sqlite"]
    session_id = insert_session(url)
    base, server, thread = serve_in_thread(
        create_app(make_settings(DATABASE_URL=url, DEMO_MODE="true"))
    )
    page = browser.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    try:
        page.goto(f"{base}/demo")
        row = page.locator(f"tr#{session_id}")
        row.wait_for(timeout=10_000)
        assert "fulfillment_complete" in row.inner_text()
        assert "pending" in row.inner_text()
        confirm(url, session_id)
        page.locator(f"tr#{session_id} td.confirmed").wait_for(timeout=10_000)
        assert "1 confirmation" in row.inner_text()
        assert "_secret_" not in page.content()
    finally:
        page.close()
        server.should_exit = True
        thread.join(timeout=10)
    assert problems == []


def test_without_demo_mode_there_is_no_demo_page(make_settings: Callable[..., Settings]) -> None:
    from litestar.testing import TestClient

    with TestClient(app=create_app(make_settings())) as client:
        assert client.get("/demo").status_code == 404
        assert client.get("/demo/sessions").status_code == 404
