"""The local EVM node the tests run against (the demo's own, from service/demo)."""

from service.demo.local_chain import MEZO_TESTNET_CHAIN_ID, Anvil, free_port, start_anvil

__all__ = ["MEZO_TESTNET_CHAIN_ID", "Anvil", "free_port", "start_anvil"]
