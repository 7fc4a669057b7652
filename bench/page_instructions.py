"""Instructions a page of sessions costs, counted by callgrind: the owner's list statement
on PostgreSQL through psycopg's sync connection (so no event-loop waits are counted), 20
rows into `SessionRow`s, their JSON. `.venv/bin/python bench/page_instructions.py`.

Counts a run of 10 pages and a run of 60 under `valgrind --tool=callgrind` and reports
`(I(60) - I(10)) / 50`: start-up and imports cancel out. Instruction counts repeat to
the instruction on one machine whatever else runs on it, so this settles what a
throughput ratio, which moves by a tenth between runs, cannot.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import in_process
from bench.harness import fresh_database
from service import migrations
from service.settings import DatabaseSettings

WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
PAGES = (10, 60)


def fill(url: str) -> None:
    migrations.upgrade(DatabaseSettings(DATABASE_URL=url))
    with psycopg.connect(url) as connection:
        connection.execute(
            "INSERT INTO onramp_sessions (id, wallet_address, stripe_session_id, client_secret,"
            " livemode, status, source_amount, source_currency, destination_currency,"
            " destination_network, delivery_status, delivery_confirmations, created_at,"
            " updated_at) SELECT 'ors_' || lpad(i::text, 26, '0'), %s, 'cos_' || i,"
            " 'secret_' || i, false, 'fulfillment_complete', '100.00', 'usd', 'musd', 'mezo',"
            " 'confirmed', 1, now(), now() FROM generate_series(1, 40) AS i",
            (WALLET,),
        )


def pages(url: str, count: int) -> None:
    """What the list route does for a page, minus HTTP."""
    import msgspec

    from service.onramp import repository, schemas
    from service.onramp.models import SessionRow
    from service.onramp.repository import Chosen

    statement, params = repository._list_statement(
        Chosen(wallet_address=WALLET), limit=21, newest_first=True
    )
    encode = msgspec.json.Encoder().encode
    given = {**params, "limit": 21}
    # A tree from before statements were built from the models has no `values`.
    sent = statement.values(given) if hasattr(statement, "values") else given
    with psycopg.connect(url, options="-c TimeZone=UTC") as connection:
        for _ in range(count):
            rows = connection.execute(statement.psycopg_query, sent).fetchall()
            page = [schemas.public(SessionRow(*row)) for row in rows[:20]]
            encode(page)


def instructions(url: str, count: int) -> int:
    command = [sys.executable, __file__, "--pages", str(count), "--url", url]
    return in_process.callgrind_instructions(command)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int)
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.pages is not None:
        pages(args.url, args.pages)
        return
    with fresh_database() as url:
        fill(url)
        few, many = (instructions(url, count) for count in PAGES)
    per_page = (many - few) / (PAGES[1] - PAGES[0])
    print(f"{per_page:,.0f} instructions a page ({few:,} for {PAGES[0]}, {many:,} for {PAGES[1]})")


if __name__ == "__main__":
    main()
