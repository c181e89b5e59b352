"""Operator commands of the CLI, one module per command group (each exposes `add_parser`)."""
