"""Subcommands of the `avsep` CLI, one module each (see `avsep.cli`)."""
