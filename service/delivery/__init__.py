"""Delivery proof: checking on chain that a fulfilled session's tokens arrived."""
