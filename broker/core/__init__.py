"""What every part of Switchboard stands on: settings and defaults, the error tree, time,
ids, every Redis key name, the Redis connection, Lua scripts, locks and schedules."""
