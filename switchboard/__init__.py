"""The `switchboard` command: run the services, the demo, and the operators' tools."""
