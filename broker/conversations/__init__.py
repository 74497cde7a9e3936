"""Conversations: their store, bot turns, transcripts, the outbox, agent actions, and the
handover to humans and back."""
