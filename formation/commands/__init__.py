"""The `formation` subcommands of each part, one module per part; `formation.cli` registers them."""
