"""KAMIYO MCP: crypto-exploit intelligence over MCP, with a built-in Stripe billing authority."""

__version__ = "0.1.0"
