"""Celery workers: bot turns, deliveries, and the scheduler that feeds them."""
