"""Stripe's nested form encoding, decoded as Stripe reads it."""

from __future__ import annotations

import contextlib
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.stripe_sim.forms import FormError, decode_form


def test_scalars_hashes_and_both_array_forms() -> None:
    body = (
        "source_amount=100.00&wallet_addresses%5Bmezo%5D=0xabc&metadata[k]=v"
        "&destination_networks[0]=mezo&destination_networks[1]=base"
        "&destination_currencies[]=musd&destination_currencies[]=usdc&lock_wallet_address=true"
    )
    assert decode_form(body) == {
        "source_amount": "100.00",
        "wallet_addresses": {"mezo": "0xabc"},
        "metadata": {"k": "v"},
        "destination_networks": ["mezo", "base"],
        "destination_currencies": ["musd", "usdc"],
        "lock_wallet_address": "true",
    }


def test_indexed_arrays_are_ordered_by_index() -> None:
    assert decode_form("a[2]=c&a[0]=a&a[1]=b") == {"a": ["a", "b", "c"]}


@pytest.mark.parametrize("body", ["a[b][c]=1", "a]=1", "a=1&a[x]=2", "a[x]=1&a[]=2"])
def test_shapes_stripe_does_not_send_are_refused(body: str) -> None:
    with pytest.raises(FormError):
        decode_form(body)


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.text(max_size=20)))
def test_flat_forms_round_trip(params: dict[str, str]) -> None:
    assert decode_form(urlencode(params)) == params


@given(st.binary(max_size=200))
def test_arbitrary_bodies_decode_or_raise_form_error(body: bytes) -> None:
    with contextlib.suppress(FormError, UnicodeDecodeError):
        decode_form(body)
