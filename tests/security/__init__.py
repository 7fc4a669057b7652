"""The security checks, and where each one lives.

Most run against a real `onramp serve` process on PostgreSQL (the `served` fixture in
conftest.py); checks that existed before this package stay where they were and are
listed here by name.

1. Schemathesis over /schema/openapi.json, every operation, without and with
   credentials: no 5xx, documented statuses and content types, conforming bodies.
   - test_openapi_fuzz.py::test_every_operation_without_credentials
   - test_openapi_fuzz.py::test_every_operation_signed_in
   - test_openapi_fuzz.py::test_every_documented_operation_was_called_both_ways
   - test_documented_answers.py::test_a_whole_purchase_is_answered_as_documented
     (the successful answers, which generated input rarely reaches)
2. Security headers, X-Request-ID and CORS on every response.
   - test_openapi_fuzz.py::security_headers_and_cors, a custom check run on every
     response of both schemathesis tests (origins rotate: allowed, foreign, none)
   - test_production_settings.py::test_production_answers_carry_hsts_whatever_they_are
   - tests/test_http_edge.py::test_cors_allows_only_the_configured_origins (preflight)
3. Forged, stale and replayed webhooks.
   - test_webhook_forgery.py::test_forged_and_stale_deliveries_are_refused_and_change_nothing
   - test_webhook_forgery.py::test_a_captured_delivery_replays_only_as_itself
   - tests/webhooks/test_signatures.py (every signature rule, byte for byte)
   - tests/webhooks/test_receive.py::test_unverified_deliveries_are_400_and_store_nothing
   - tests/webhooks/test_receive.py::test_a_duplicate_delivery_changes_nothing
4. Sign-in replay, cross-domain and cross-chain messages.
   - test_sign_in_replay.py::test_a_used_nonce_is_refused_in_any_message
   - test_sign_in_replay.py::test_messages_signed_for_another_site_or_chain_are_refused
   - tests/auth/test_sign_in.py::test_a_nonce_is_single_use,
     ::test_messages_meant_for_elsewhere_or_another_time_are_refused,
     ::test_concurrent_verifies_across_server_processes_yield_exactly_one_token
5. No wallet reads or lists another wallet's sessions (404, never 403).
   - test_wallet_isolation.py::test_another_wallets_session_is_as_absent_as_one_that_never_existed
   - test_wallet_isolation.py::test_no_filter_or_cursor_lists_another_wallets_sessions
   - tests/onramp/test_create_and_read.py::test_another_wallets_session_does_not_exist_for_you,
     ::test_a_token_for_one_wallet_cannot_create_for_another
   - tests/onramp/test_idempotency.py::test_keys_belong_to_one_wallet
   - the admin routes: item 6
6. Operator routes without a key, with a wrong key, with a wallet token.
   - test_operator_routes.py::test_operator_routes_refuse_every_near_miss
   - test_operator_routes.py::test_the_operator_key_is_accepted_and_opens_no_wallet_route
7. Rate limits across two processes through Redis.
   - test_rate_limits_across_processes.py::test_one_client_ip_gets_one_budget_across_replicas
   - test_rate_limits_across_processes.py::test_one_wallet_gets_one_budget_across_replicas
   - tests/auth/test_rate_limits.py (per client network, proxies, Redis down)
   - tests/auth/test_rate_limits.py::test_nobody_can_lock_a_wallet_out_of_asking_for_a_nonce,
     ::test_junk_signatures_naming_a_wallet_do_not_block_its_sign_in,
     ::test_one_ipv6_slash_64_shares_one_budget,
     ::test_a_wallet_keeps_its_newest_nonces_and_loses_the_oldest
8. Oversized and deeply nested bodies: a clean 4xx, nothing changes.
   - test_hostile_bodies.py::test_a_body_over_the_limit_is_a_413
   - test_hostile_bodies.py::test_deeply_nested_json_is_a_400
   - tests/auth/test_hostile_input.py, tests/onramp/test_hostile_input.py (fuzzed JSON)
9. ENVIRONMENT=production refuses unsafe settings.
   - tests/test_settings.py::test_production_refuses_unsafe_settings,
     ::test_production_reports_all_missing_secrets_together
   - tests/test_cli.py::test_production_without_its_secrets_refuses_to_start
   - test_production_settings.py::test_a_misspelt_environment_is_refused
   - test_production_settings.py::test_production_in_any_case_is_production
   - test_production_settings.py::test_unsafe_settings_in_other_spellings_are_refused
   - test_production_settings.py::
     test_production_refuses_local_sign_in_no_operator_keys_and_an_unseen_proxy
10. Hostile edges: a sign-in message crafted to be slow cannot stall the process, only
    onramp session updates of the session's own mode move it, and the document's types
    are what validation accepts.
   - tests/auth/test_event_loop.py::test_hostile_verify_calls_leave_health_answering_fast
   - tests/auth/test_message.py (the linear parser against the ABNF grammar)
   - tests/webhooks/test_hostile_events.py
   - tests/test_typescript_client.py

Secrets stay out of the logs: tests/test_logging.py, and
test_openapi_fuzz.py::test_the_server_log_holds_none_of_the_credentials_it_was_sent for
the served process after the fuzzing.
"""
