"""Webhook channels: the channel record and store, the two inbound forms, and rate limits."""
