"""Awareness campaigns: opt-in subscribers, campaigns defined in YAML, the outbox dispatcher."""
