"""The node service: the one process that owns the host. Never imports the console."""
