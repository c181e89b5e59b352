"""The product's HTTP surface: bearer authentication for /mcp and the core routes."""
