"""What operators and orchestrators probe: liveness, readiness, metrics."""
