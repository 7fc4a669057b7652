"""The stand-in's hosted payment page, at each session's `redirect_url` (like Stripe's
standalone hosted onramp): a person or a browser test pays with a test card or is
refused, which moves the session and sends the signed webhooks.

Test cards, as in Stripe's test mode: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is
declined, and the stand-in then rejects the session.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

PAGE_PREFIX = "/pay/"
PAYING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
# Sends the tokens for a paid session and returns the transaction's hash (the demo's
# local chain); without one, fulfilment reports a made-up hash, as before.
Deliver = Callable[[dict[str, Any]], str]


class Paid(Protocol):
    """What a payment reaches of the stand-in (app.py's `StripeSimulator`)."""

    deliver: Deliver | None

    def session_by_hash(self, page: str) -> dict[str, Any] | None: ...

    def advance(
        self, session_id: str, status: str, *, transaction_id: str | None = None
    ) -> dict[str, Any]: ...


def page_url(host: str, session_hash: str) -> str:
    return f"http://{host}{PAGE_PREFIX}{session_hash}"


def hosted_page(
    simulator: Paid, method: str, path: str, body: bytes
) -> tuple[int, str, dict[str, str]]:
    """(status, HTML, headers) for a page request."""
    session = simulator.session_by_hash(path.removeprefix(PAGE_PREFIX))
    if session is None:
        return 404, _page("Not found", "<p>This payment link is not valid.</p>"), {}
    if method == "POST":
        card = "".join(parse_qs(body.decode("utf-8", "replace")).get("card", [""])[0].split())
        message = pay(simulator, session, card)
        return 200, _session_page(session, message), {}
    return 200, _session_page(session, None), {}


def pay(simulator: Paid, session: dict[str, Any], card: str) -> str:
    """Take the card's answer; the session moves as Stripe's would and its webhooks go."""
    if session["status"] not in {"initialized", "requires_payment"}:
        return "This session is no longer waiting for a payment."
    if card == DECLINED_CARD:
        simulator.advance(session["id"], "rejected")
        return "Your card was declined. The purchase was refused."
    if card != PAYING_CARD:
        return "Use a test card: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined."
    if session["status"] == "initialized":
        simulator.advance(session["id"], "requires_payment")
    simulator.advance(session["id"], "fulfillment_processing")
    try:
        transaction = simulator.deliver(session) if simulator.deliver is not None else None
    except Exception as error:  # the session stays in processing, as Stripe's would
        return f"Paid, but sending the tokens failed ({type(error).__name__}); not completed."
    simulator.advance(session["id"], "fulfillment_complete", transaction_id=transaction)
    return "Payment received. Your tokens are on their way."


def _session_page(session: dict[str, Any], message: str | None) -> str:
    details = session["transaction_details"]
    rows = [
        ("Amount", f"{details['source_amount']} {details['source_currency'].upper()}"),
        (
            "You receive",
            f"{details['destination_amount'] or '…'} {details['destination_currency']}",
        ),
        ("Network", details["destination_network"] or ""),
        ("Wallet", details["wallet_address"] or ""),
        ("Status", session["status"]),
    ]
    table = "".join(
        f"<tr><th>{html.escape(k)}</th><td data-field='{html.escape(k.lower())}'>"
        f"{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    notice = f"<p role='status'>{html.escape(message)}</p>" if message else ""
    form = ""
    if session["status"] in {"initialized", "requires_payment"}:
        form = (
            "<form method='post'><label>Card number <input name='card' autocomplete='off'"
            " inputmode='numeric' placeholder='4242 4242 4242 4242'></label>"
            " <button type='submit'>Pay</button></form>"
        )
    return _page("Pay with card (test mode)", f"{notice}<table>{table}</table>{form}")


def _received(details: dict[str, Any]) -> str:
    return f"{details['destination_amount'] or '…'} {details['destination_currency']}"


def _page(title: str, content: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><meta name='viewport' content='width=device-width'>"
        "<style>body{font:16px system-ui;max-width:32rem;margin:2rem auto;padding:0 1rem}"
        "th{text-align:left;padding-right:1rem}td{word-break:break-all}"
        "input{font:inherit;width:14rem}button{font:inherit}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><p>Stripe stand-in: no real money moves.</p>"
        f"{content}</body></html>"
    )
