"""Live status: a session's changes streamed to its owner as Server-Sent Events."""
