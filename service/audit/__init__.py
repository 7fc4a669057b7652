"""The operators' audit trail: a row for every operator route call and operator command
that changes something, written in the transaction of its change and kept for ever
(`GET /api/v1/admin/audit`, `onramp audit list`)."""
