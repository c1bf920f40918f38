"""The `formation` subcommands, one module per part; `formation.cli.COMMANDS` names them."""
