"""The ``callcenter`` command: run | serve | asterisk | agents | db | config."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.config import ConfigError, ServiceSettings, Settings, load_settings
from callcenter.features.ivr.flows import FlowLibrary, FlowStatus
from callcenter.features.ivr.switches import forget_running_service, note_running_service
from callcenter.logfilter import install_repeat_limit
from callcenter.sim.cli import add_simulate_parser

if TYPE_CHECKING:
    from callcenter.app import CallCenter

log = logging.getLogger("callcenter")
PID_FILE = "callcenter.pid"  # in the data folder, for `callcenter ivr reload`


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _setup_logging(service: ServiceSettings) -> None:
    logging.basicConfig(
        level=getattr(logging, service.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # A flood (connections refused, a peer misbehaving in a loop) must not fill the disk:
    # a line repeating from one place is written so often per window, then counted.
    for handler in logging.getLogger().handlers:
        install_repeat_limit(handler, limit=service.log_repeat_limit,
                             window=float(service.log_repeat_window_seconds))
    # Alembic narrates every migration step at INFO; only its problems matter here.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.root.level))


def softphone_help(settings: Settings, flow: FlowStatus | None = None,
                   new_passwords: Mapping[str, str] | None = None) -> str:
    """The start-up banner. ``flow``: which version of the IVR flow new calls get. SIP
    passwords only of agents just created (the first start): printed at every start they
    would end up in every log that keeps the output."""
    new_passwords = new_passwords or {}
    a = settings.asterisk
    sip_host = "127.0.0.1" if a.sip_host in ("0.0.0.0", "") else a.sip_host
    active_flow = flow.describe() if flow else f"{settings.ivr.flow}.yaml"
    if flow and flow.from_last_good:
        active_flow += f"\n                    fix {flow.path}: the log lists its errors"
    lines = [
        "",
        "The call center is up.",
        f"  IVR flow:         {active_flow}",
        f"  Call the IVR:     dial {settings.ivr.number} (sip:{settings.ivr.number}@{sip_host}:"
        f"{a.sip_port}; any SIP client on this machine, no account needed)",
        f"  Web / API:        http://{settings.service.http_host}:{settings.service.http_port}"
        "/api/queues, /api/agents, /api/calls   (all routes: /api/openapi.json; health: "
        "/healthz)",
        f"  Agents' softphones register to {sip_host}:{a.sip_port} over UDP:",
    ]
    for agent in settings.agents:
        queues = ", ".join(agent.queues) or "no queues"
        password = new_passwords.get(agent.id)
        shown = f"password {password}" if password else "password on request (below)"
        lines.append(f"    {agent.id:<8} {shown}   ({agent.name}; {queues})")
    if any(agent.id not in new_passwords for agent in settings.agents):
        lines.append("    (a SIP password is printed only when it is made; on request: "
                     "callcenter agents password AGENT)")
    lines.append("  From an agent's phone: *50 log in nailed-up, *51 log in, *52N pause "
                 "(reason N), *53 ready, *54 log out.")
    lines.append("  Press Ctrl-C to stop.")
    return "\n".join(lines)


async def note_served_flows(settings: Settings, center: CallCenter) -> None:
    """Tell `callcenter ivr switch` which flows this service serves and checks them against,
    so a switch is checked against the right folder even when its settings differ."""
    agents = [agent.id for agent in await center.directory.list()]
    try:
        note_running_service(settings.data_path, dialplans_dir=settings.dialplans_path,
                             prompts_dir=settings.prompts_path, language=settings.ivr.language,
                             queues=[q.name for q in settings.queues], agents=agents)
    except OSError as exc:  # calls matter more; the command then checks its own settings' flows
        log.warning("could not note the served flows for `callcenter ivr switch` in %s: %s",
                    settings.data_path, exc)


async def _serve(settings: Settings) -> int:
    from callcenter.app import CallCenter

    center = CallCenter(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    pid_file = settings.data_path / PID_FILE
    try:
        await center.start()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, center.reload_flows)
        pid_file.write_text(f"{os.getpid()}\n")
        await note_served_flows(settings, center)
        # What start-up built (modules, settings, flows, the ACD) lives as long as the
        # process: out of the collector's scans, a full collection under load scans only what
        # calls made (docs/PERFORMANCE.md, FastAGI sessions: p99 +4.9 ms over the baseline
        # without this at 2,000 sessions, +1.9 ms with it).
        gc.freeze()
        print(softphone_help(settings, center.flows.status(settings.ivr.flow),
                             center.new_sip_passwords), flush=True)
        if center.first_admin_password:
            print(f"  First start: sign in as admin with password {center.first_admin_password}"
                  f"\n  (kept in {settings.data_path / 'admin-password'}; change it)", flush=True)
        await stop.wait()
    finally:
        if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
        forget_running_service(settings.data_path)
        await center.stop()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _setup_logging(settings.service)
    return asyncio.run(_serve(settings))


def cmd_run(args: argparse.Namespace) -> int:
    """Everything for a first look: the sandboxed Asterisk, the database, the service."""
    from callcenter.asterisk.sandbox import Sandbox

    settings = _settings(args)
    _setup_logging(settings.service)
    if settings.asterisk.mode != "sandbox":
        return asyncio.run(_serve(settings))
    sandbox = Sandbox(settings)
    if not sandbox.installed:
        print(f"Installing the sandboxed Asterisk 22 into {settings.sandbox_root} "
              "(downloads about 500 MB, once)...", flush=True)
    sandbox.install()
    sandbox.write_config()
    sandbox.start()
    try:
        return asyncio.run(_serve(settings))
    finally:
        if not args.keep_asterisk:
            sandbox.stop()


def cmd_asterisk(args: argparse.Namespace) -> int:
    from callcenter.asterisk.sandbox import run_asterisk_command

    settings = _settings(args)
    _setup_logging(settings.service)
    return run_asterisk_command(settings, args.action, args.command)


def cmd_agents(args: argparse.Namespace) -> int:
    """An agent's SIP password on request: shown if still known, or --new makes one."""
    from callcenter.features.agents.passwords import agent_password

    settings = _settings(args)
    answer = asyncio.run(agent_password(settings, args.agent, renew=args.new))
    print(answer.text, file=sys.stdout if answer.exit_code == 0 else sys.stderr)
    return answer.exit_code


def cmd_db(args: argparse.Namespace) -> int:
    from callcenter.store.db import upgrade

    settings = _settings(args)
    asyncio.run(upgrade(settings.database_url))
    print(f"database is at the latest schema: {_safe_url(settings.database_url)}")
    return 0


def cmd_reports(args: argparse.Namespace) -> int:
    """Recount the report aggregates from the stored call records (docs/reports.md)."""
    from callcenter.features.reports.rebuild import rebuild_reports

    settings = _settings(args)
    _setup_logging(settings.service)
    try:
        read = asyncio.run(rebuild_reports(settings, since=args.since, until=args.until))
    except ValueError as exc:
        print(f"callcenter reports rebuild: {exc}", file=sys.stderr)
        return 2
    print(f"report aggregates rebuilt from {read} call records")
    return 0


def cmd_tariffs(args: argparse.Namespace) -> int:
    """Import a tariff file (whole or not at all) or list the imported ones."""
    from callcenter.features.rating import commands

    settings = _settings(args)
    if args.action == "import":
        if args.file is None:
            print("callcenter tariffs import: name the FILE to import", file=sys.stderr)
            return 2
        answer = asyncio.run(commands.import_tariff(settings, Path(args.file), args.name))
    else:
        answer = asyncio.run(commands.list_tariffs(settings))
    print(answer.text, file=sys.stdout if answer.exit_code == 0 else sys.stderr)
    return answer.exit_code


def cmd_rate(args: argparse.Namespace) -> int:
    """Re-rate the closed calls of a period with the tariffs as they are now."""
    from callcenter.features.rating import commands

    settings = _settings(args)
    answer = asyncio.run(commands.rerate(settings, args.since, args.until, apply=args.apply,
                                         zone=args.zone or settings.center.time_zone))
    print(answer.text, file=sys.stdout if answer.exit_code == 0 else sys.stderr)
    return answer.exit_code


def cmd_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _flow_library(settings).load(settings.ivr.flow)
    print(f"settings and flow {settings.ivr.flow!r} are valid")
    return 0


def _flow_library(settings: Settings) -> FlowLibrary:

    return FlowLibrary(settings.dialplans_path, settings.prompts_path,
                       language=settings.ivr.language,
                       known_queues=[q.name for q in settings.queues],
                       known_agents=[a.id for a in settings.agents])


def cmd_ivr(args: argparse.Namespace) -> int:
    """check: validate flow files; reload: validate, then tell the running service to reload;
    switch: set a flow's open/closed switch."""
    from callcenter.core.flows import FlowError

    settings = _settings(args)
    if args.action == "switch":
        return _switch(settings, args.flow, args.state)
    library = _flow_library(settings)
    target = Path(args.path) if getattr(args, "path", None) else settings.dialplans_path
    if args.action == "reload":
        target = settings.dialplans_path / f"{settings.ivr.flow}.yaml"
    files = sorted(target.glob("*.yaml")) if target.is_dir() else [target]
    if not files:
        print(f"no flow files (*.yaml) in {target}", file=sys.stderr)
        return 1
    broken = 0
    for path in files:
        try:
            flow = library.check_file(path)
        except FlowError as error:
            broken += 1
            print(error, file=sys.stderr)
        else:
            print(f"{path}: ok ({len(flow.nodes)} nodes)")
    if broken:
        print(f"{broken} of {len(files)} flow file(s) have errors", file=sys.stderr)
        return 1
    if args.action == "check":
        return 0
    return _signal_service(settings, signal.SIGHUP, "reload its IVR flows")


def cmd_prompts(args: argparse.Namespace) -> int:
    """Convert recordings, speak missing prompts from their text, report what is wrong, for
    every language the flows speak or prompts.toml has (or the one --language names)."""
    from callcenter.core.flows import FlowError, parse_flow
    from callcenter.features.ivr import prompts
    from callcenter.features.ivr.sessions import SERVICE_PROMPTS

    settings = _settings(args)
    folder = settings.prompts_path
    # The service's own prompts are played in whatever language the caller is in.
    needed: dict[str, set[str]] = {settings.ivr.language: set(SERVICE_PROMPTS)}
    queues = [q.name for q in settings.queues]
    for flow_file in sorted(settings.dialplans_path.glob("*.yaml")):
        try:
            flow = parse_flow(flow_file.read_text(encoding="utf-8"), str(flow_file),
                              known_queues=queues, prompt_exists=lambda name, language: True,
                              default_language=settings.ivr.language)
        except (FlowError, OSError, UnicodeDecodeError) as exc:
            print(f"warning: {flow_file} skipped, it does not validate: {exc}", file=sys.stderr)
            continue
        for language in flow.languages:
            needed.setdefault(language, set(SERVICE_PROMPTS)).update(flow.prompts())
    try:
        languages = ([args.language] if args.language
                     else sorted(set(needed) | set(prompts.prompt_languages(folder))))
    except prompts.PromptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    made = wrong = False
    for language in languages:
        try:
            converted = prompts.convert_recordings(folder, language)
            spoken = prompts.build_prompts(folder, language)
        except prompts.PromptError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        for path in [*converted, *spoken]:
            print(f"{'converted' if path in converted else 'spoke'} {path}")
        missing = prompts.missing_prompts(folder, language, needed.get(language, set()))
        silent = prompts.silent_prompts(folder, language)
        for name in missing:
            print(f"missing: {name} in {language} (used by a flow; add "
                  f"{folder / language / name}.wav, a recording in "
                  f"{folder / language / prompts.SOURCES_FOLDER}/, or its text in "
                  f"{folder / prompts.PROMPTS_FILE})", file=sys.stderr)
        for name in silent:
            print(f"silent: {folder / language / name}.wav has no audible sound",
                  file=sys.stderr)
        if not converted and not spoken:
            print(f"prompts in {folder / language} are up to date")
        made = made or bool(converted or spoken)
        wrong = wrong or bool(missing or silent)
    if made:
        print("run `callcenter asterisk reload` to give them to a running sandboxed Asterisk")
    return 1 if wrong else 0


def _switch(settings: Settings, flow: str, word: str) -> int:
    """Set a flow's open/closed switch where the running service reads it, after checking
    that it would act (features/ivr/switches.py: the one rule)."""
    from callcenter.features.ivr.switches import (
        FlowSwitches,
        SwitchRefused,
        check_switch,
        describe,
        parse_switch,
        running_service,
    )

    try:
        override = parse_switch(word)
    except SwitchRefused as refusal:
        print(f"callcenter ivr switch: {refusal}", file=sys.stderr)
        return 2
    service = running_service(settings.data_path)
    flows = service.flow_library() if service else _flow_library(settings)
    if service and Path(service.dialplans_dir) != settings.dialplans_path.resolve():
        print(f"the service running on {settings.data_path} (pid {service.pid}) serves the "
              f"flows in {service.dialplans_dir}: checking the flow there")
    switches = FlowSwitches(settings.data_path)
    try:
        target = check_switch(flows, flow, override, switches)
    except SwitchRefused as refusal:
        print(f"callcenter ivr switch: refused: {refusal}", file=sys.stderr)
        return 1
    switches.set(flow, override)
    print(describe(target, flow, override))
    if service:
        print(f"the running service (pid {service.pid}) reads {switches.path} at its next call")
    else:
        print(f"note: no service is running on the data folder {settings.data_path}; the "
              f"switch is kept in {switches.path} for the service that starts on it. A "
              "service started with other settings (--config, CALLCENTER_CONFIG, "
              "CALLCENTER_DATA_DIR) does not read it: give this command the same ones",
              file=sys.stderr)
    return 0


def _signal_service(settings: Settings, sig: signal.Signals, what: str) -> int:
    pid_file = settings.data_path / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, sig)
    except (OSError, ValueError):
        print(f"the service is not running (no live process in {pid_file}); "
              "it will read the flows when it starts", file=sys.stderr)
        return 1
    print(f"asked the service (pid {pid}) to {what}; its log says what it did")
    return 0


SWITCH_HELP = """\
Set a flow's open/closed switch. It acts through the flow's business-hours nodes
(type: time), so it is refused, with a non-zero exit, for a flow that has none (add one:
docs/ivr.md, "Business hours"), for an unknown flow and for a flow file that does not
validate. `auto` removes the switch: the flow follows its file again.

The switch is written to <data_dir>/ivr-switches.toml, which the service re-reads at its
next call. Give this command the service's own settings, the way the service loads them:
`callcenter --config FILE ivr switch ...` (or CALLCENTER_CONFIG=FILE), then the
CALLCENTER_* environment variables, above all CALLCENTER_DATA_DIR. While a service runs on
that data folder, the flow is checked against the flows that service serves (its
ivr.dialplans_dir, queues and agents, noted in <data_dir>/ivr-service.json), even if these
settings name another folder. With no service running there, the switch is kept for the
service that starts on that data folder, and the command says so.

examples:
  callcenter ivr switch main closed      # the next callers hear the closed branch
  callcenter ivr switch main auto        # back to the hours in dialplans/main.yaml
  callcenter --config /etc/callcenter.toml ivr switch sac open
"""


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
    agents = sub.add_parser("agents", help="agents' SIP passwords: show one (if still known) "
                            "or make a new one")
    agents.add_argument("action", choices=["password"])
    agents.add_argument("agent", help="the agent's id")
    agents.add_argument("--new", action="store_true",
                        help="make a new random password, show it once, give Asterisk its "
                        "digest")
    agents.set_defaults(func=cmd_agents)
    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(func=cmd_db)
    ivr = sub.add_parser("ivr", help="IVR call flows: check files, reload the running "
                         "service, or switch a flow open/closed")
    ivr_actions = ivr.add_subparsers(dest="action", required=True)
    check = ivr_actions.add_parser("check", help="validate flow files")
    check.add_argument("path", nargs="?", help="a flow file or a folder of them (default: the "
                       "dialplans folder)")
    ivr_actions.add_parser("reload", help="validate the served flow, then tell the running "
                           "service to reload its flows")
    switch = ivr_actions.add_parser(
        "switch", help="the admin's switch over a flow's business hours, from the next call on",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=SWITCH_HELP)
    switch.add_argument("flow", help="the flow's name: dialplans/<flow>.yaml")
    switch.add_argument("state", metavar="{open,closed,24x7,auto}", help="open or closed "
                        "whatever the hours say, 24x7: open day and night, auto: back to what "
                        "the flow file says")
    ivr.set_defaults(func=cmd_ivr)
    prm = sub.add_parser("prompts", help="build IVR prompts: convert recordings to 8 kHz "
                         "mono, speak missing ones from text, report silent or missing ones")
    prm.add_argument("action", choices=["build"])
    prm.add_argument("--language", help="only this language (default: every language the "
                     "flows speak or prompts.toml has)")
    prm.set_defaults(func=cmd_prompts)
    rep = sub.add_parser("reports", help="report aggregates: rebuild them from the stored "
                         "call records (after an upgrade, or a change of [reports] settings "
                         "or a queue's service_level_seconds)")
    rep.add_argument("action", choices=["rebuild"])
    rep.add_argument("--since", help="only calls that started at or after this ISO 8601 time "
                     "(without --since and --until: everything, from nothing)")
    rep.add_argument("--until", help="only calls that started before this ISO 8601 time")
    rep.set_defaults(func=cmd_reports)
    cfg = sub.add_parser("config", help="settings")
    cfg.add_argument("action", choices=["check"])
    cfg.set_defaults(func=cmd_config)
    tariffs = sub.add_parser("tariffs", help="rating: import a tariff file (CSV, taken whole "
                             "or not at all, docs/rating.md) or list the imported ones")
    tariffs.add_argument("action", choices=["import", "list"])
    tariffs.add_argument("file", nargs="?", help="for import: the CSV file")
    tariffs.add_argument("--name", help="for import: the name to list it under (default: the "
                         "file's name)")
    tariffs.set_defaults(func=cmd_tariffs)
    rate = sub.add_parser("rate", help="re-rate the closed calls of a period with the tariffs "
                          "as they are now and show the difference (a dry run unless --apply)")
    rate.add_argument("--since", required=True, help="calls that started from then: a date "
                      "(its midnight in --zone) or an ISO 8601 time")
    rate.add_argument("--until", required=True, help="calls that started before then")
    rate.add_argument("--apply", action="store_true", help="store the new prices")
    rate.add_argument("--zone", help="the time zone of the dates and of the days shown "
                      "(default: the center's, [center] time_zone)")
    rate.set_defaults(func=cmd_rate)
    add_simulate_parser(sub)
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
        from callcenter.core.flows import FlowError

        if isinstance(exc, FlowError):
            print(f"callcenter: the IVR flow is broken:\n{exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
