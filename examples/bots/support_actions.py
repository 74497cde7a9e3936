"""The support bot's custom action (see broker.bots.custom_actions for the interface)."""

from __future__ import annotations

import hashlib

from broker.bots.custom_actions import ActionContext, ActionResult


def open_ticket(context: ActionContext) -> ActionResult:
    """Opens a ticket for the customer's email address (here: makes up its number)."""
    email = str(context.variables.get("customer.email", ""))
    number = int(hashlib.sha256(email.encode()).hexdigest()[:6], 16) % 100_000
    ticket = f"T-{number:05d}"
    return ActionResult(
        variables={"ticket.id": ticket},
        messages=[f"I opened ticket {ticket} for {email}. Our billing team answers within a day."],
    )
