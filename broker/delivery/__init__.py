"""Deliveries: fan-out, records, per-(endpoint, conversation) queues, the scheduler's side,
endpoints and their health, retry policy, signing, and the outbound HTTP client."""
