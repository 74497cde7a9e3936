"""Benchmarks that print the figures the project reports."""
