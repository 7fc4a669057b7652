"""Wallet sign-in (EIP-4361, EIP-1271), wallet tokens, operator API keys."""
