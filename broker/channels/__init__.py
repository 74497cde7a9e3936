"""Webhook channels: the channel store, the two inbound forms, ingress and rate limits."""
