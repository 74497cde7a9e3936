"""Switchboard's core: everything that runs without Flask, Celery or the network."""

__version__ = "0.1.0"
