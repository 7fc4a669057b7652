"""The environment every service the suite starts begins from."""

# Nothing in the suite may reach a public RPC node: point the chain at a closed port.
BASE_ENV = {"MEZO_RPC_URLS": "http://127.0.0.1:9", "LOG_FORMAT": "json", "DELIVERY_WORKER": "false"}
