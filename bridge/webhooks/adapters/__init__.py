"""I/O side of the webhooks: SQLite outbox, HTTP sender, dispatcher, key files, REST routes."""
