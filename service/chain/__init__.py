"""The EVM side: addresses, contract artifacts and JSON-RPC access with failover."""
