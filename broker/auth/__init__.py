"""Admin tokens and bot API tokens."""
