"""Three-way reconciliation: Stripe's sessions, ours, and the chain's delivery verdicts
(`onramp reconcile`)."""
