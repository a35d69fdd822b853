"""The ``callcenter`` command: run | serve | asterisk | db | config."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from callcenter.config import ConfigError, Settings, load_settings

log = logging.getLogger("callcenter")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # Alembic narrates every migration step at INFO; only its problems matter here.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.root.level))


def softphone_help(settings: Settings) -> str:
    a = settings.asterisk
    sip_host = "127.0.0.1" if a.sip_host in ("0.0.0.0", "") else a.sip_host
    lines = [
        "",
        "The call center is up.",
        f"  Call the IVR:     dial {settings.ivr.number} (sip:{settings.ivr.number}@{sip_host}:"
        f"{a.sip_port}; any SIP client on this machine, no account needed)",
        f"  Web / API:        http://{settings.service.http_host}:{settings.service.http_port}"
        "/api/calls   (health: /healthz)",
        f"  Agents' softphones register to {sip_host}:{a.sip_port} over UDP:",
    ]
    for agent in settings.agents:
        queues = ", ".join(agent.queues) or "no queues"
        lines.append(f"    {agent.id:<8} password {agent.password}   ({agent.name}; {queues})")
    lines.append("  Press Ctrl-C to stop.")
    return "\n".join(lines)


async def _serve(settings: Settings, *, on_started: str | None = None) -> int:
    from callcenter.app import CallCenter

    center = CallCenter(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await center.start()
        if on_started:
            print(on_started, flush=True)
        await stop.wait()
    finally:
        await center.stop()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _setup_logging(settings.service.log_level)
    return asyncio.run(_serve(settings, on_started=softphone_help(settings)))


def cmd_run(args: argparse.Namespace) -> int:
    """Everything for a first look: the sandboxed Asterisk, the database, the service."""
    from callcenter.asterisk.sandbox import Sandbox

    settings = _settings(args)
    _setup_logging(settings.service.log_level)
    if settings.asterisk.mode != "sandbox":
        return asyncio.run(_serve(settings, on_started=softphone_help(settings)))
    sandbox = Sandbox(settings)
    if not sandbox.installed:
        print(f"Installing the sandboxed Asterisk 22 into {settings.sandbox_root} "
              "(downloads about 500 MB, once)...", flush=True)
    sandbox.install()
    sandbox.write_config()
    sandbox.start()
    try:
        return asyncio.run(_serve(settings, on_started=softphone_help(settings)))
    finally:
        if not args.keep_asterisk:
            sandbox.stop()


def cmd_asterisk(args: argparse.Namespace) -> int:
    from callcenter.asterisk.sandbox import run_asterisk_command

    settings = _settings(args)
    _setup_logging(settings.service.log_level)
    return run_asterisk_command(settings, args.action, args.command)


def cmd_db(args: argparse.Namespace) -> int:
    from callcenter.store.db import upgrade

    settings = _settings(args)
    asyncio.run(upgrade(settings.database_url))
    print(f"database is at the latest schema: {_safe_url(settings.database_url)}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from callcenter.service.flows import FlowLibrary

    settings = _settings(args)
    FlowLibrary(settings.dialplans_path, settings.prompts_path, language=settings.ivr.language,
                known_queues=[q.name for q in settings.queues]).load(settings.ivr.flow)
    print(f"settings and flow {settings.ivr.flow!r} are valid")
    return 0


def _safe_url(url: str) -> str:
    """A database URL without its password, for printing."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':')[0]}:***@{tail}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callcenter", description=__doc__)
    parser.add_argument("--config", help="settings file (TOML); default: $CALLCENTER_CONFIG "
                        "or the embedded demo settings")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="install and start the sandboxed Asterisk, then serve")
    run.add_argument("--keep-asterisk", action="store_true",
                     help="leave the sandboxed Asterisk running on exit")
    run.set_defaults(func=cmd_run)
    sub.add_parser("serve", help="run the service against an Asterisk that is already up"
                   ).set_defaults(func=cmd_serve)
    ast = sub.add_parser("asterisk", help="manage the sandboxed Asterisk (reload: regenerate "
                         "its configuration from the settings and apply it)")
    ast.add_argument("action",
                     choices=["install", "start", "stop", "reload", "status", "cli", "config"])
    ast.add_argument("command", nargs="?", help='for cli: an Asterisk CLI command, quoted; '
                     'for config: the folder to write the generated files to')
    ast.set_defaults(func=cmd_asterisk)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(func=cmd_db)
    cfg = sub.add_parser("config", help="settings")
    cfg.add_argument("action", choices=["check"])
    cfg.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"callcenter: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from callcenter.core.flowfile import FlowError

        if isinstance(exc, FlowError):
            print(f"callcenter: the IVR flow is broken:\n{exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
