"""Training of the default en<->zh model shipped in weights/ (needs the [train] extra)."""
