"""`kamiyo-mcp`: serve over HTTP or stdio, and the operator's commands.

The only module that reads argv and the environment. Exit codes: 0 ok, 1 the command failed,
2 bad usage or settings (one line naming the problem), 141 stdout was closed before everything was
written (`... | head`), as for any Unix tool stopped by SIGPIPE.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from dotenv import dotenv_values

from kamiyo_mcp import __version__
from kamiyo_mcp.commands import arguments, claims, events, ingest, oauth, outbox, overage, reconcile, tokens
from kamiyo_mcp.logs import configure_logging
from kamiyo_mcp.settings import Settings, SettingsError, load_settings

logger = logging.getLogger("kamiyo_mcp")

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a C tool cut off by `| head`

EXIT_CODES = ("exit codes: 0 ok, 1 the command failed (message on stderr), 2 bad usage or settings, "
              "141 stdout closed early. Settings come from the environment (and ./.env); see the README.")

CONNECT_DESCRIPTION = (
    "Bridge an MCP client that starts local commands (Claude Desktop's config file) to a hosted KAMIYO server: "
    "stdin/stdout here, streamable HTTP there. With KAMIYO_TOKEN set, that token is sent; without it, the first "
    "run opens the sign-in page in the browser (sign in with your email, approve), and the tokens are cached in "
    "your user config directory (readable by you alone) and refreshed from then on."
)

STDIO_DESCRIPTION = (
    "Serve the tools over stdin/stdout for Claude Desktop (or any MCP client that starts a process). "
    "The caller's token comes from the KAMIYO_TOKEN environment variable, set in the server's \"env\" "
    "of claude_desktop_config.json (see claude_desktop_config.example.json); without it every tool call "
    "is refused. Every call is authorized against the same store as `serve`. Logs go to stderr."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    env = read_environment()
    if args.command == "serve" and not env.get("KAMIYO_PUBLIC_URL", "").strip():
        # Unset public URL: advertise the address actually served (metadata, links in messages).
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        env["KAMIYO_PUBLIC_URL"] = f"http://{'[' + host + ']' if ':' in host else host}:{args.port}"
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(f"kamiyo-mcp: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        code = int(args.handler(settings, args) or 0)
        sys.stdout.flush()  # a reader that went away is noticed here, not as a traceback at exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except SettingsError as exc:
        print(f"kamiyo-mcp: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _discard_stdout() -> None:
    # What is still buffered can never be delivered; without this the interpreter's final flush
    # raises again and prints "Exception ignored ... BrokenPipeError".
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def read_environment() -> dict[str, str]:
    """The process environment over an optional `.env` in the working directory."""
    env = {k: v for k, v in dotenv_values(".env").items() if v is not None} if os.path.exists(".env") else {}
    env.update(os.environ)
    return env


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kamiyo-mcp", description="KAMIYO MCP server and operator tools.",
                                     epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"kamiyo-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="serve /mcp and the billing routes over HTTP",
        description="Serve MCP at /mcp (Bearer token) with the billing API, the pages and /healthz in one process. "
                    "The store is KAMIYO_DATABASE_URL (default: SQLite in the user data directory); the URL clients "
                    "use is KAMIYO_PUBLIC_URL (default: the address served).", epilog=EXIT_CODES)
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=arguments.port, default=8000, help="port, 1-65535 (default 8000)")
    serve.set_defaults(handler=_serve)

    stdio = commands.add_parser("stdio", help="serve the tools over stdio (Claude Desktop); token from KAMIYO_TOKEN",
                                description=STDIO_DESCRIPTION, epilog=EXIT_CODES)
    stdio.set_defaults(handler=_stdio)

    connect = commands.add_parser(
        "connect", help="bridge a local MCP client (stdio) to a hosted KAMIYO server: token from KAMIYO_TOKEN, "
                        "else sign in once in the browser", description=CONNECT_DESCRIPTION, epilog=EXIT_CODES)
    connect.add_argument("url", type=connect_url, help="the server's MCP URL, e.g. https://mcp.kamiyo.ai/mcp")
    connect.add_argument("--no-browser", action="store_true",
                         help="print the sign-in address instead of opening the browser")
    connect.add_argument("--sign-out", action="store_true", help="revoke and forget the cached sign-in for URL")
    connect.set_defaults(handler=_connect)

    tokens.add_parser(commands)
    ingest.add_parser(commands)
    events.add_parser(commands)
    claims.add_parser(commands)
    outbox.add_parser(commands)
    reconcile.add_parser(commands)
    overage.add_parser(commands)
    oauth.add_parser(commands)
    return parser


# ---- servers -----------------------------------------------------------------------------------

def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from kamiyo_mcp.app import create_app
    from kamiyo_mcp.listening import listen_problem

    problem = listen_problem(args.host, args.port)
    if problem is not None:
        print(f"kamiyo-mcp: {problem.message}", file=sys.stderr)
        return problem.exit_code
    app = create_app(settings, bind_host=args.host, settle_heap=True)
    logger.info("serving MCP at %s/mcp (bound to %s:%d), store %s, incident data %s", settings.public_url,
                args.host, args.port, settings.database_label, settings.intel_path)
    # log_config=None: uvicorn's records reach our handler (one format, secrets redacted).
    # proxy_headers=False: the app applies KAMIYO_TRUSTED_PROXIES itself; uvicorn's default would trust
    # X-Forwarded-For from any process on 127.0.0.1.
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(), log_config=None,
                access_log=False, proxy_headers=False, lifespan="on", timeout_graceful_shutdown=5)
    return 0


def connect_url(value: str) -> str:
    from kamiyo_mcp.connect import ConnectError, mcp_url

    try:
        return mcp_url(value)
    except ConnectError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _connect(settings: Settings, args: argparse.Namespace) -> int:
    from kamiyo_mcp.connect import run_connect, sign_out

    url = args.url
    if args.sign_out:
        print(f"kamiyo-mcp connect: {asyncio.run(sign_out(url))}", file=sys.stderr)
        return 0
    try:
        asyncio.run(run_connect(url, token=settings.kamiyo_token, open_browser=not args.no_browser))
    except Exception as exc:  # the top of the command: one line for the person, the detail in the log
        logger.debug("connect failed", exc_info=True)
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1 and isinstance(exc.exceptions[0],
                                                                                               Exception):
            exc = exc.exceptions[0]  # the task group's one failure, not the group
        print(f"kamiyo-mcp connect: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def _stdio(settings: Settings, args: argparse.Namespace) -> int:
    from kamiyo_mcp.stdio import run_stdio

    asyncio.run(run_stdio(settings))
    return 0
