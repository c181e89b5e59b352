"""MCP tools. Each module registers its tools on a server with `register(server, runtime)`."""
