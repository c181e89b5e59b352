"""The tools a server serves, each with its argument model, so a call is checked before it is counted.

Quota is spent only on calls that reach their tool: a call whose arguments the tool's input model
rejects is answered by the SDK's validation error and costs nothing. The HTTP edge (which decides
a `tools/call` before the MCP server parses it) and the gate both ask `accepts` first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import Icon, ToolAnnotations


class ToolCatalog:
    def __init__(self, *, account_tools: Collection[str] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._account_tools = frozenset(account_tools)

    def add(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def shows_account(self, name: str) -> bool:
        """Whether the tool's answer is the account view (its call is admitted with the account's state)."""
        return name in self._account_tools

    def accepts(self, name: str, arguments: Mapping[str, Any] | None) -> bool:
        """Whether `arguments` pass the input model of the tool `name` (as the SDK will check them)."""
        tool = self._tools.get(name)
        if tool is None:
            return False
        try:
            tool.fn_metadata.validate_arguments(dict(arguments or {}))
        except Exception:  # a ValidationError, or a validator that crashes: either way the body never runs
            return False
        return True


class CatalogedServer(MCPServer[Any]):
    """An `MCPServer` that records every tool it registers in `catalog`."""

    def __init__(self, *args: Any, catalog: ToolCatalog, **kwargs: Any) -> None:
        self.catalog = catalog
        super().__init__(*args, **kwargs)

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        super().add_tool(fn, name=name, title=title, description=description, annotations=annotations, icons=icons,
                         meta=meta, structured_output=structured_output)
        # The same construction the SDK performs, kept for its argument model.
        self.catalog.add(Tool.from_function(fn, name=name, title=title, description=description,
                                            annotations=annotations, icons=icons, meta=meta,
                                            structured_output=structured_output))
