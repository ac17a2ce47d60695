"""`marketplace`: the command-line client of the model marketplace, for people and for CI.

    marketplace login
    marketplace publish DIR --bump minor --visibility public
    marketplace call OWNER/NAME[/VERSION] -d '{"text": "I love it"}'
    marketplace search sentiment

Configuration: MARKETPLACE_API_URL and MARKETPLACE_API_KEY, else what `marketplace login` saved
in $XDG_CONFIG_HOME/marketplace/credentials.json; --api-url and --api-key override both.
Standard library only. Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.

This package imports nothing from Django: it works with no settings and no database."""

from __future__ import annotations

import argparse
import os
import sys

from .client import (
    DEFAULT_API_URL,
    ENV_API_KEY,
    ENV_API_URL,
    ApiClient,
    ApiError,
    CliError,
    NetworkError,
    UsageError,
    credentials_path,
    is_local_url,
    load_credentials,
    resolve_settings,
    save_credentials,
    tool_version,
)
from .commands import cmd_call, cmd_login, cmd_publish, cmd_search, cmd_whoami, parse_target
from .packaging import build_package, multipart_body, zip_folder

__all__ = [
    "ApiClient",
    "ApiError",
    "CliError",
    "NetworkError",
    "UsageError",
    "build_package",
    "build_parser",
    "cmd_call",
    "cmd_login",
    "cmd_publish",
    "cmd_search",
    "cmd_whoami",
    "credentials_path",
    "load_credentials",
    "main",
    "multipart_body",
    "parse_target",
    "resolve_settings",
    "save_credentials",
    "zip_folder",
]


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return int(value) if value.is_integer() else value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return value


def _connection_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--api-url",
        metavar="URL",
        default=default,
        help=f"the marketplace (default: ${ENV_API_URL}, the saved login, or {DEFAULT_API_URL})",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        default=default,
        help=f"the API key (default: ${ENV_API_KEY}, or the saved login)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketplace",
        description="Publish, find and call models on the model marketplace.",
        epilog=(
            f"Configuration: ${ENV_API_URL} and ${ENV_API_KEY}, else what `marketplace login` "
            "saved. Exit status: 0 ok, 1 failure, 2 usage error."
        ),
    )
    parser.add_argument("--version", action="version", version=f"marketplace {tool_version()}")
    _connection_options(parser, suppress=False)
    # The same options after the command name (`marketplace call X --api-key K`) win.
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    login = commands.add_parser(
        "login",
        parents=[common],
        help="check an API key and save it",
        description=(
            "Prompt for an API key (or read it from stdin when stdin is not a terminal, e.g. "
            "`echo $KEY | marketplace login`), check it and save it, readable by you only, in "
            "$XDG_CONFIG_HOME/marketplace/credentials.json (default: ~/.config/marketplace/)."
        ),
    )
    login.set_defaults(func=cmd_login)

    whoami = commands.add_parser("whoami", parents=[common], help="show who the key belongs to")
    whoami.add_argument("--json", action="store_true", help="print the raw JSON")
    whoami.set_defaults(func=cmd_whoami)

    publish = commands.add_parser(
        "publish",
        parents=[common],
        help="upload a model, follow its build and publish a version",
        description=(
            "Upload DIR (a model folder, zipped without .git, __pycache__, .venv, node_modules, "
            "*.pyc and .DS_Store; or a .zip/.tar.gz/.onnx/.skops file as it is), follow the "
            "build with its log, then publish it as a new version."
        ),
    )
    publish.add_argument("path", metavar="DIR", help="model folder or package file")
    publish.add_argument("--bump", required=True, choices=("major", "minor", "patch"))
    publish.add_argument("--visibility", required=True, choices=("public", "private"))
    publish.add_argument("--owner", metavar="TEAM", help="user or team (default: you)")
    publish.add_argument("--name", help="model name (default: the manifest's)")
    notes = publish.add_mutually_exclusive_group()
    notes.add_argument("--release-notes", metavar="TEXT")
    notes.add_argument("--release-notes-file", metavar="FILE", help="'-' reads stdin")
    publish.add_argument(
        "--no-wait", action="store_true", help="print the build id after the upload and stop"
    )
    publish.add_argument(
        "--timeout",
        type=_positive_number,
        default=1800,
        metavar="SECONDS",
        help="how long to wait for the build (default: 1800)",
    )
    publish.set_defaults(func=cmd_publish)

    call = commands.add_parser(
        "call",
        parents=[common],
        help="call a model",
        description="Call OWNER/NAME[/VERSION] (VERSION: 1.2.3, 1.2, 1, latest, ...).",
    )
    call.add_argument("target", metavar="OWNER/NAME[/VERSION]")
    given = call.add_mutually_exclusive_group(required=True)
    given.add_argument("-d", "--data", metavar="JSON", help="JSON input")
    given.add_argument(
        "-D", "--data-file", metavar="FILE", help="binary input from FILE ('-' reads stdin)"
    )
    given.add_argument("--text", metavar="TEXT", help="text input")
    call.add_argument(
        "--timeout", type=_positive_number, metavar="S", help="seconds (server default: 300)"
    )
    call.add_argument("--raw", action="store_true", help="ask for the bare result (output=raw)")
    call.add_argument("--stdout", action="store_true", help="show the model's stdout (owners only)")
    call.add_argument("-o", "--output", metavar="FILE", help="write the result to FILE")
    call.set_defaults(func=cmd_call)

    search = commands.add_parser("search", parents=[common], help="search the catalogue")
    search.add_argument("text", nargs="?", default="", metavar="TEXT")
    search.add_argument("--task", metavar="T")
    search.add_argument("--tag", action="append", metavar="T", help="repeat for several")
    search.add_argument("--limit", type=_positive_int, default=20, metavar="N")
    search.add_argument("--json", action="store_true", help="print the raw JSON")
    search.set_defaults(func=cmd_search)
    return parser


_warned_plain_http = False


def _warn_plain_http(settings) -> None:
    global _warned_plain_http
    if (
        settings.api_key
        and settings.api_url.startswith("http://")
        and not is_local_url(settings.api_url)
        and not _warned_plain_http
    ):
        _warned_plain_http = True
        print(
            f"warning: your API key is sent unencrypted to {settings.api_url} (plain http)",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    settings = None
    try:
        login = args.command == "login"
        # `login` replaces the saved credentials, so a damaged file must not stop it.
        settings = resolve_settings(
            args.api_url, None if login else args.api_key, ignore_bad_file=login
        )
        _warn_plain_http(settings)
        return args.func(args, settings)
    except ApiError as exc:
        message = str(exc)
        if exc.status == 401 and settings is not None and not settings.api_key:
            message += f"\nNo API key is configured: set {ENV_API_KEY} or run `marketplace login`."
        print(message, file=sys.stderr)
        return exc.exit_code
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except EOFError:
        print("no input", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`marketplace search x | head`): not an error worth a traceback.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
