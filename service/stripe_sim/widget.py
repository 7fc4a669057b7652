"""The stand-in's embedded onramp: a script with `@stripe/crypto`'s shape, so that a dApp
runs its widget code against the stand-in as it would against Stripe.

Stripe's frontend (`@stripe/crypto`) is `loadStripeOnramp(publishableKey)` →
`.createSession({clientSecret, appearance})` → `.mount(element)`, the session emitting
`onramp_ui_loaded` and `onramp_session_updated` (`payload.session`) to its
`addEventListener` listeners. Stripe's scripts come from crypto-js.stripe.com, which
these machines cannot reach; the stand-in serves its own at `SCRIPT_PATH` (an ES module
exporting `loadStripeOnramp`), which shows the session's hosted payment page
(hosted_page.py) in an iframe and follows the session's status at `SESSION_PATH`.

Both answer any origin (CORS): a dApp loads them from its own page, as it loads Stripe's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

from service.stripe_sim.sessions import FINAL_STATUSES

WIDGET_PREFIX = "/crypto-js/"
SCRIPT_PATH = "/crypto-js/onramp.js"
SESSION_PATH = "/crypto-js/session"
_FOLLOW_EVERY_MS = 500

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Sessions(Protocol):
    """What the widget reads of the stand-in (app.py's `StripeSimulator`)."""

    sessions: dict[str, dict[str, Any]]


def session_by_secret(simulator: Sessions, client_secret: str) -> dict[str, Any] | None:
    """The session a client secret belongs to (its id is the secret's prefix)."""
    session_id, marker, _ = client_secret.partition("_secret_")
    session = simulator.sessions.get(session_id) if marker else None
    return session if session is not None and session["client_secret"] == client_secret else None


def widget_session(session: dict[str, Any]) -> dict[str, Any]:
    """What the widget tells its listeners (`@stripe/crypto`'s `OnrampSessionResult`)
    and where its iframe pays."""
    details = session["transaction_details"]
    return {
        "session": {
            "id": session["id"],
            "object": session["object"],
            "livemode": session["livemode"],
            "client_secret": session["client_secret"],
            "status": session["status"],
            "quote": None,
            "wallet_address": details["wallet_address"],
        },
        "page_url": session["redirect_url"],
        "ended": session["status"] in FINAL_STATUSES,
    }


async def serve_widget(
    simulator: Sessions, method: str, path: str, query: bytes, send: Send
) -> None:
    """The script, or a session's state for it; 404 otherwise."""
    if method == "GET" and path == SCRIPT_PATH:
        script = SCRIPT.replace("FOLLOW_EVERY_MS", str(_FOLLOW_EVERY_MS))
        await _send(send, 200, "text/javascript; charset=utf-8", script.encode())
        return
    if method == "GET" and path == SESSION_PATH:
        secret = parse_qs(query.decode("latin-1")).get("client_secret", [""])[0]
        session = session_by_secret(simulator, secret)
        if session is not None:
            body = json.dumps(widget_session(session)).encode()
            await _send(send, 200, "application/json", body)
            return
    error = {"error": {"type": "invalid_request_error", "message": "No such onramp session."}}
    await _send(send, 404, "application/json", json.dumps(error).encode())


async def _send(send: Send, status: int, content_type: str, body: bytes) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"access-control-allow-origin", b"*"),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


SCRIPT = """// The Stripe stand-in's @stripe/crypto: loadStripeOnramp(publishableKey)
// -> createSession({clientSecret, appearance}) -> mount(element). Test mode only.
const origin = new URL(import.meta.url).origin;

async function read(clientSecret) {
  const url = `${origin}/crypto-js/session?client_secret=${encodeURIComponent(clientSecret)}`;
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error("The onramp session was not found.");
  return response.json();
}

class OnrampSession {
  constructor(options) {
    if (!options || typeof options.clientSecret !== "string") {
      throw new Error("createSession needs a clientSecret.");
    }
    this.clientSecret = options.clientSecret;
    this.theme = (options.appearance && options.appearance.theme) || "light";
    this.listeners = new Map();
  }

  addEventListener(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
    return this;
  }

  removeEventListener(type, listener) {
    this.listeners.get(type)?.delete(listener);
    return this;
  }

  emit(type, session) {
    const event = { type, payload: { session } };
    for (const key of [type, "*"]) {
      for (const listener of this.listeners.get(key) ?? []) listener(event);
    }
  }

  mount(target) {
    const element = typeof target === "string" ? document.querySelector(target) : target;
    if (!element) throw new Error("mount needs an element.");
    const frame = document.createElement("iframe");
    frame.title = "Pay with card (Stripe test mode)";
    frame.style.cssText = "width:100%;min-height:26rem;border:0;color-scheme:" + this.theme;
    element.replaceChildren(frame);
    this.follow(frame).catch((error) => console.warn("onramp stand-in:", error));
    return this;
  }

  async follow(frame) {
    let state = await read(this.clientSecret);
    const loaded = () => this.emit("onramp_ui_loaded", state.session);
    frame.addEventListener("load", loaded, { once: true });
    frame.src = state.page_url;
    while (!state.ended && frame.isConnected) {
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_EVERY_MS));
      const now = await read(this.clientSecret);
      if (now.session.status !== state.session.status) {
        this.emit("onramp_session_updated", now.session);
      }
      state = now;
    }
  }
}

export async function loadStripeOnramp(publishableKey) {
  if (typeof publishableKey !== "string" || !publishableKey.startsWith("pk_")) {
    throw new Error("loadStripeOnramp needs a publishable key (pk_...).");
  }
  return { createSession: (options) => new OnrampSession(options) };
}
"""
