"""The pure rules of a delivery round, without a chain or a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.delivery.decisions import (
    SEARCH_AGAIN,
    Checked,
    Credit,
    Holder,
    apply_time_out,
    credit_order,
    next_due,
    one_session_per_transfer,
    taken_from_searches,
    with_finality,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TX = "0x" + "ab" * 32
TRANSFER = Credit(31611, TX, 0)


def confirmed(*credits: Credit, search: bool = False, confirmations: int = 3) -> Checked:
    return Checked(
        "confirmed",
        f"{confirmations} confirmations",
        "99",
        confirmations,
        7,
        "0x" + "cd" * 32,
        TX if search else None,
        credits=credits,
        found_by_search=search,
    )


def test_the_pause_doubles_from_two_seconds_up_to_five_minutes() -> None:
    pauses = [(next_due(NOW, attempts) - NOW).total_seconds() for attempts in range(1, 11)]
    assert pauses == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


def test_only_an_unseen_transaction_times_out_and_then_gives_up_its_credits() -> None:
    started = NOW - timedelta(seconds=61)
    unseen = Checked("pending", "the transaction is not on the chain (yet)", unseen=True)
    failed = apply_time_out(unseen, started, NOW, 60, seen_before=False)
    assert (failed.status, failed.credits, failed.finished) == ("failed", (), True)
    assert failed.detail.startswith("not decided within 60 s:")
    assert apply_time_out(unseen, NOW - timedelta(seconds=59), NOW, 60, seen_before=False) == unseen
    short_of_confirmations = Checked("pending", "1 of 3 confirmations", "99", 1)
    assert (
        apply_time_out(short_of_confirmations, started, NOW, 60, seen_before=False)
        == short_of_confirmations
    )


def test_a_transfer_seen_before_and_gone_waits_to_come_back_however_long() -> None:
    gone = Checked("pending", "the transaction is not on the chain (yet)", unseen=True)
    long_ago = NOW - timedelta(days=3)
    assert apply_time_out(gone, long_ago, NOW, 60, seen_before=True) == gone


def test_a_confirmed_delivery_is_watched_until_its_network_calls_it_final() -> None:
    shallow = with_finality(confirmed(TRANSFER, confirmations=11), 600)
    assert (shallow.status, shallow.finished) == ("confirmed", False)
    assert shallow.detail.endswith("watched for reorganisation until 600")
    deep = with_finality(confirmed(TRANSFER, confirmations=600), 600)
    assert (deep.finished, deep.detail) == (True, "600 confirmations")
    assert with_finality(confirmed(TRANSFER, confirmations=1), 1).finished


def test_refusals_read_from_a_shallow_block_are_watched_too() -> None:
    reverted = Checked("failed", "the transaction reverted", "0", 2, credits=())
    watched = with_finality(reverted, 64)
    assert (watched.status, watched.finished) == ("failed", False)
    assert with_finality(reverted, 2).finished


def test_a_transfer_goes_to_the_session_that_named_it_then_to_the_older_one() -> None:
    results = {
        "ors_found": confirmed(TRANSFER, search=True),
        "ors_younger": confirmed(TRANSFER),
        "ors_older": confirmed(TRANSFER),
    }
    created = {
        "ors_found": NOW - timedelta(hours=2),
        "ors_younger": NOW - timedelta(minutes=1),
        "ors_older": NOW - timedelta(hours=1),
    }
    order = credit_order(results, created, {})
    assert [session for _, session in order] == ["ors_older", "ors_younger", "ors_found"]
    incumbent = {TRANSFER: Holder("ors_younger", found_by_search=False)}
    order = credit_order(results, created, incumbent)
    assert [session for _, session in order] == ["ors_younger", "ors_older", "ors_found"]


def test_a_named_transfer_is_taken_from_a_session_that_only_found_it() -> None:
    results = {"ors_named": confirmed(TRANSFER), "ors_searching": confirmed(TRANSFER, search=True)}
    found_elsewhere = {TRANSFER: Holder("ors_finder", found_by_search=True)}
    assert taken_from_searches(results, found_elsewhere) == {TRANSFER: ("ors_named", "ors_finder")}
    named_elsewhere = {TRANSFER: Holder("ors_finder", found_by_search=False)}
    assert taken_from_searches(results, named_elsewhere) == {}
    only_searching = {"ors_searching": confirmed(TRANSFER, search=True)}
    assert taken_from_searches(only_searching, found_elsewhere) == {}


def test_proposals_are_ordered_by_transfer_so_rounds_lock_in_one_order() -> None:
    later = Credit(31611, "0x" + "ff" * 32, 0)
    earlier = Credit(31611, TX, 1)
    results = {"ors_a": confirmed(later), "ors_b": confirmed(earlier, TRANSFER)}
    order = credit_order(results, {"ors_a": NOW, "ors_b": NOW}, {})
    assert [credit for credit, _ in order] == [TRANSFER, earlier, later]


def test_a_session_naming_a_held_transfer_is_a_mismatch_naming_the_holder() -> None:
    results = {"ors_a": confirmed(TRANSFER), "ors_b": confirmed(TRANSFER)}
    settled = one_session_per_transfer(results, {TRANSFER: "ors_a"})
    assert settled["ors_a"] == results["ors_a"]
    loser = settled["ors_b"]
    assert (loser.status, loser.delivered_amount, loser.credits) == ("mismatch", "0", ())
    assert loser.detail == f"transfer {TX} (log 0) already proves session ors_a"
    assert loser.finished


def test_a_session_that_only_found_a_held_transfer_searches_again() -> None:
    results = {"ors_found": confirmed(TRANSFER, search=True)}
    settled = one_session_per_transfer(results, {TRANSFER: "ors_other"})["ors_found"]
    assert (settled.status, settled.detail, settled.unseen) == ("pending", SEARCH_AGAIN, True)
    assert settled.transaction_hash is None
    assert not settled.finished


def test_one_held_log_of_several_is_enough_to_refuse() -> None:
    second = Credit(31611, TX, 1)
    results = {"ors_b": confirmed(TRANSFER, second)}
    settled = one_session_per_transfer(results, {TRANSFER: "ors_b", second: "ors_a"})
    assert settled["ors_b"].status == "mismatch"
    assert "(log 1) already proves session ors_a" in settled["ors_b"].detail
