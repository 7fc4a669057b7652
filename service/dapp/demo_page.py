"""`/demo`: a page that shows the sessions, their status and delivery, live.

Served only in demo mode (`DEMO_MODE=true`, set by `onramp demo`): it lists every
session without authentication, which only a local demonstration may do. The page
polls `/demo/sessions` once a second; its script is a file of its own so that the
content security policy can stay strict (`script-src 'self'`).
"""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State

from service.dapp.provider import DappServices
from service.onramp import queries, schemas

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>onramp demo</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; }
.confirmed { color: #0a7d2c; font-weight: 600; }
.pending { color: #a06b00; }
.mismatch, .failed { color: #b00020; font-weight: 600; }
</style>
</head>
<body>
<h1>onramp: sessions, live</h1>
<p id="updated">waiting for the first update…</p>
<table>
<thead><tr><th>Session</th><th>Wallet</th><th>Amount</th><th>Status</th>
<th>Delivery</th><th>Detail</th><th>Transaction</th></tr></thead>
<tbody id="sessions"></tbody>
</table>
<script src="/demo/app.js"></script>
</body>
</html>
"""

SCRIPT = """
async function refresh() {
  const response = await fetch("/demo/sessions");
  const sessions = await response.json();
  const rows = sessions.map((s) => {
    const cells = [
      s.id, s.walletAddress, `${s.sourceAmount} ${s.sourceCurrency}`, s.status,
      s.delivery.status, s.delivery.detail || "", s.transactionHash || "",
    ];
    const tr = document.createElement("tr");
    tr.id = s.id;
    cells.forEach((value, index) => {
      const td = document.createElement("td");
      td.textContent = value;
      if (index === 4) td.className = s.delivery.status;
      tr.appendChild(td);
    });
    return tr;
  });
  document.getElementById("sessions").replaceChildren(...rows);
  document.getElementById("updated").textContent =
    `${sessions.length} session(s), updated ${new Date().toLocaleTimeString()}`;
}
refresh();
setInterval(refresh, 1000);
"""


@get("/demo", include_in_schema=False)
async def demo_page() -> Response[str]:
    return Response(PAGE, media_type="text/html")


@get("/demo/app.js", include_in_schema=False)
async def demo_script() -> Response[str]:
    return Response(SCRIPT, media_type="text/javascript")


@get("/demo/sessions", include_in_schema=False)
async def demo_sessions(state: State) -> list[schemas.SessionSummary]:
    newest = await queries.page(
        DappServices.of(state).database, wallet_address=None, status=None, cursor=None, limit=50
    )
    return [schemas.summary(session) for session in newest.sessions]


routes = [demo_page, demo_script, demo_sessions]
