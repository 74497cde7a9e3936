"""Bots: the bot store and its versions, the definition format, templates, BotMessages
and the dialogue engine (pure)."""
