"""The environment every service the suite starts begins from."""

# Nothing in the suite may reach a public RPC node: point the chain at a closed port.
BASE_ENV = {"MEZO_RPC_URLS": "http://127.0.0.1:9", "LOG_FORMAT": "json", "DELIVERY_WORKER": "false"}

# A staging deployment (production's checks, Stripe's test mode) but for its database.
STAGING_ENV = {
    "ENVIRONMENT": "staging",
    "JWT_SECRET": "s" * 40,
    "STRIPE_SECRET_KEY": "sk_test_onramp_staging",
    "STRIPE_WEBHOOK_SECRET": "whsec_onramp_staging",
    "ALLOWED_ORIGINS": "https://app.example",
    "AUTH_DOMAIN": "app.example",
    "AUTH_URI": "https://app.example",
    "ADMIN_API_KEYS": "ops-key-for-staging-0123456789abcdef",
    "MEZO_RPC_URLS": "https://127.0.0.1:9",  # a closed port, as BASE_ENV's, over https
}
