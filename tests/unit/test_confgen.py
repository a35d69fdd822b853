"""The Asterisk configuration generated from our settings."""

from __future__ import annotations

import hashlib
import re
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from callcenter.asterisk import confgen
from callcenter.config import (
    AgentSettings,
    OutboundSettings,
    QueueSettings,
    Settings,
    load_settings,
)
from callcenter.features.agents.store import AgentAccount

Section = tuple[str, list[tuple[str, str]]]


def parse(text: str) -> list[Section]:
    """Asterisk's config syntax, enough to check ours: [sections] of `key = value` lines."""
    sections: list[Section] = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            sections.append((line[1:line.index("]")], []))
            continue
        key, _, value = line.partition("=")
        sections[-1][1].append((key.strip(), value.lstrip(">").strip()))
    return sections


def options(sections: list[Section], name: str, kind: str | None = None) -> dict[str, str]:
    """The options of the section called name (of that pjsip type, if given); last wins."""
    for section, pairs in sections:
        values = dict(pairs)
        if section == name and (kind is None or values.get("type") == kind):
            return values
    raise AssertionError(f"no section [{name}] {kind or ''}")


AGI_SECRET = "AgiSecret0123456789"  # the first segment of every AGI URL


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    base = load_settings(env={"CALLCENTER_DATA_DIR": str(tmp_path),
                              "CALLCENTER_ASTERISK__AMI_PORT": "15038",
                              "CALLCENTER_ASTERISK__SIP_PORT": "15060",
                              "CALLCENTER_ASTERISK__RTP_START": "20000",
                              "CALLCENTER_ASTERISK__RTP_END": "20199",
                              "CALLCENTER_SERVICE__AGI_PORT": "14573",
                              "CALLCENTER_SERVICE__AGI_SECRET": AGI_SECRET,
                              "CALLCENTER_IVR__NUMBER": "500"})
    agents = (
        replace(base.agents[0], contact="sip:agent1@127.0.0.1:5081"),
        *base.agents[1:],
        AgentSettings(id="agent4", name="Dana", password="password4", queues=("sales",),
                      logged_in=False),
    )
    return replace(base, agents=agents)


def test_the_sandbox_gets_every_file_its_static_configuration_includes(
        settings: Settings) -> None:
    static = Path(confgen.__file__).resolve().parents[2] / "asterisk-conf"
    included = {line.split('"')[1] for path in static.glob("*.conf")
                for line in path.read_text().splitlines() if line.startswith("#include")}
    assert included == set(confgen.sandbox_files(settings))


def test_ami_listens_where_configured_for_one_least_rights_user(settings: Settings) -> None:
    files = confgen.sandbox_files(settings)
    general = options(parse(files["callcenter-manager-general.conf"]), "general")
    assert general["bindaddr"] == "127.0.0.1"
    assert general["port"] == "15038"
    assert general["enabled"] == "yes" and general["timestampevents"] == "yes"
    [(name, pairs)] = parse(files["callcenter-manager-user.conf"])
    assert name == settings.asterisk.ami_username
    user = dict(pairs)
    assert user["secret"] == settings.asterisk.ami_secret
    assert user["read"] == "system,call,dtmf,user"
    # agent: the fallback queues' pause flags; originate: callbacks and supervisors' calls.
    # Never system (Originate of System(), module reloads) nor config or command.
    assert user["write"] == "call,agent,originate,reporting"
    acl = [(k, v) for k, v in pairs if k in ("permit", "deny")]
    assert acl == [("deny", "0.0.0.0/0.0.0.0"), ("permit", "127.0.0.1/255.255.255.255")]


def test_a_private_ami_host_may_connect_too(settings: Settings) -> None:
    private = replace(settings, asterisk=replace(settings.asterisk, host="10.1.2.3"))
    user = parse(confgen.manager_user(private))[0][1]
    assert ("permit", "10.1.2.3/255.255.255.255") in user
    general = options(parse(confgen.manager_general(private)), "general")
    assert general["bindaddr"] == "10.1.2.3"
    local = replace(settings, asterisk=replace(settings.asterisk, host="localhost"))
    assert options(parse(confgen.manager_general(local)), "general")["bindaddr"] == "127.0.0.1"


def test_sip_listens_on_the_configured_port_and_unknown_callers_reach_the_ivr(
        settings: Settings) -> None:
    sections = parse(confgen.pjsip_transport(settings))
    transport = options(sections, confgen.TRANSPORT_NAME, "transport")
    assert transport["bind"] == "127.0.0.1:15060"
    assert transport["protocol"] == "udp"
    trunk = options(sections, "anonymous", "endpoint")
    assert trunk["context"] == "callers"
    assert trunk["allow"] == "ulaw,alaw"
    assert trunk["dtmf_mode"] == "rfc4733"
    assert trunk["direct_media"] == "no"
    assert "auth" not in trunk


def test_each_agent_has_an_authenticated_endpoint_limited_to_the_agents_context(
        settings: Settings) -> None:
    sections = parse(confgen.pjsip_agents(settings))
    for agent in settings.agents:
        endpoint = options(sections, agent.id, "endpoint")
        assert endpoint["context"] == "agents"
        assert endpoint["callerid"] == f'"{agent.name}" <{agent.id}>'
        assert endpoint["aors"] == agent.id
        auth = options(sections, endpoint["auth"], "auth")
        assert auth == {"type": "auth", "auth_type": "digest", "realm": "callcenter",
                        "username": agent.id, "password_digest": "MD5:" + hashlib.md5(
                            f"{agent.id}:callcenter:{agent.password}".encode()).hexdigest()}
        aor = options(sections, agent.id, "aor")
        assert (aor["max_contacts"], aor["remove_existing"]) == ("1", "yes")
        assert aor.get("contact", "") == agent.contact
    assert options(sections, "agent1", "aor")["contact"] == "sip:agent1@127.0.0.1:5081"


def test_the_ivr_number_runs_the_fastagi_ivr_and_falls_back_to_the_operator_queue(
        settings: Settings) -> None:
    dialplan = confgen.extensions(settings)
    # The caller ID is cleaned first (test_callerid_dialplan.py), then the call answered.
    callers = dialplan.split("[callers]\n")[1].split("\n\n")[0]
    assert callers.startswith("exten => 500,1,Set(CALLCENTER_CALLERID_RAW=")
    ivr = " same => n,AGI(agi://127.0.0.1:14573/AgiSecret0123456789/ivr,${CALLCENTER_CALLERID_RAW})\n"
    assert " same => n,Answer()\n" + ivr in dialplan
    # Whatever ended the FastAGI script (refused, failed, the service killed), a caller still
    # on the line after it goes to the fallback: the service hangs up every call it ends.
    assert ivr + " same => n,Goto(callcenter-fallback,s,1)\n" in dialplan
    fallback = dialplan.split("[callcenter-fallback]\n")[1].split("\n\n")[0].splitlines()
    # Who already talked to an agent is hung up; a queued caller waits in the same queue;
    # anyone else in the operator queue.
    assert fallback[:7] == [
        'exten => s,1,GotoIf($["${CALLCENTER_STAGE}" = "talking"]?done)',
        ' same => n,GotoIf($["${CALLCENTER_STAGE}" = "talked"]?done)',
        ' same => n,GotoIf($["${CALLCENTER_STAGE}${DIALSTATUS}" = "ringingANSWER"]?done)',
        " same => n,Playback(callcenter/sorry-fallback)",
        " same => n,GotoIf($[${DIALPLAN_EXISTS(callcenter-fallback,q-${CALLCENTER_QUEUE},1)}]"
        "?q-${CALLCENTER_QUEUE},1)",
        " same => n,Goto(q-operator,1)",
        " same => n(done),Hangup()",
    ]
    for queue in settings.queues:
        at = fallback.index(f"exten => q-{queue.name},1,Set(CALLCENTER_STAGE=fallback)")
        empty_to = "" if queue.name == "operator" else "operator"
        assert fallback[at + 1:at + 3] == [
            " same => n,Set(CALLCENTER_HOPS=$[0${CALLCENTER_HOPS} + 1])",
            f" same => n,Queue({queue.name},,,,{queue.max_wait})",
        ]
        end = fallback.index(" same => n(sorry),Playback(callcenter/sorry-no-agent)", at)
        assert fallback[end + 1] == " same => n,Hangup()"
        assert fallback[at + 3] == " same => n,GotoIf($[${CALLCENTER_HOPS} > 3]?sorry)"
        assert bool(empty_to) == any(f"LEAVEEMPTY\"]?q-{empty_to},1)" in line
                                     for line in fallback[at:end])


def test_the_fallback_follows_overflow_and_leaves_queues_with_nobody_at_work(
        settings: Settings) -> None:
    """Past max_wait or max_length a fallback caller goes where the service would send them;
    from a queue whose members are all paused or logged out, on to the overflow queue or the
    operator, never round in circles."""
    sales = replace(settings.queues[0], overflow_to="support", max_length=4)
    overflowing = replace(settings, queues=(sales, *settings.queues[1:]))
    fallback = confgen.extensions(overflowing).split("[callcenter-fallback]\n")[1]
    sales_lines = fallback.split("exten => q-sales,1")[1].split("exten => ")[0]
    assert ('GotoIf($["${QUEUESTATUS}" = "TIMEOUT" | "${QUEUESTATUS}" = "FULL"]?q-support,1)'
            in sales_lines)
    assert ('GotoIf($["${QUEUESTATUS}" = "JOINEMPTY" | "${QUEUESTATUS}" = "LEAVEEMPTY"]'
            "?q-support,1)" in sales_lines)
    operator_lines = fallback.split("exten => q-operator,1")[1].split("exten => ")[0]
    assert "QUEUESTATUS" not in operator_lines  # the last resort waits for whoever is free
    queues = dict(parse(confgen.queues(overflowing)))
    assert dict(queues["sales"])["maxlen"] == "4"
    assert dict(queues["support"])["maxlen"] == "0"
    elsewhere = replace(settings, asterisk=replace(settings.asterisk,
                                                   agi_host_for_asterisk="172.17.0.1"))
    assert "AGI(agi://172.17.0.1:14573/AgiSecret0123456789/ivr," in confgen.extensions(elsewhere)


def agent_extensions(dialplan: str) -> list[str]:
    """The extensions agents' phones may dial (the [agents] context's exten lines)."""
    context = dialplan.split("[agents]\n")[1].split("\n\n")[0].splitlines()
    return [line.split(",")[0].removeprefix("exten => ") for line in context
            if line.startswith("exten => ")]


def test_agents_phones_can_dial_feature_codes_and_the_ivr_and_nothing_else(
        settings: Settings) -> None:
    dialplan = confgen.extensions(settings)
    assert agent_extensions(dialplan) == ["*50", "*51", "*53", "*54", "*52", "_*52[1-5]",
                                          "_*55[1-9]", "500", "_X."]
    agents = dialplan.split("[agents]\n")[1].split("\n\n")[0]
    assert "Dial(" not in agents  # an agent's phone cannot call out or ring anyone
    assert "exten => 500,1,Goto(callers,500,1)\nexten => _X.,1,Hangup()" in agents
    # Each code asks the service; the nailed-up login then sits in the agent's own bridge.
    assert (" same => n,AGI(agi://127.0.0.1:14573/AgiSecret0123456789/agent,pause,"
            "${EXTEN:3})") in agents
    assert (" same => n(bridge),ConfBridge(callcenter-agent-${CALLCENTER_AGENT},"
            "callcenter_agent_bridge,callcenter_agent,callcenter_agent_menu)") in agents
    assert agents.count("Playback(callcenter/sorry-service-unavailable)") == 6


def test_pause_codes_exist_only_for_the_configured_reasons(settings: Settings) -> None:
    one = replace(settings, acd=replace(settings.acd, pause_reasons=("break",)))
    assert agent_extensions(confgen.extensions(one))[4:6] == ["*52", "*521"]
    bad = replace(settings, acd=replace(settings.acd, pause_reasons=("break", "x;y")))
    with pytest.raises(ValueError, match=r"acd.pause_reasons\[1\]"):
        confgen.extensions(bad)


def test_nailed_up_bridges_keep_callers_only_while_the_agent_is_there() -> None:
    sections = parse(confgen.confbridge_profiles_file(None))  # type: ignore[arg-type]
    agent = options(sections, "callcenter_agent", "user")
    caller = options(sections, "callcenter_caller", "user")
    assert (agent["marked"], agent["admin"], agent["quiet"]) == ("yes", "yes", "yes")
    assert (caller["end_marked"], caller["quiet"]) == ("yes", "yes")
    assert options(sections, "callcenter_agent_menu", "menu")["*0"] == "admin_kick_last"


def test_queues_ring_their_logged_in_agents(settings: Settings) -> None:
    sections = dict(parse(confgen.queues(settings)))
    assert set(sections) == {"sales", "support", "operator"}
    sales = sections["sales"]
    assert dict(sales)["strategy"] == "leastrecent"
    assert dict(sales)["timeout"] == "15"
    assert dict(sales)["musicclass"] == "default"
    assert dict(sales)["joinempty"] == dict(sales)["leavewhenempty"] == "paused,invalid,unavailable"
    members = [v for k, v in sales if k == "member"]
    assert members == ["PJSIP/agent1,0,Alice", "PJSIP/agent3,0,Chen"]  # Dana is logged out
    support_members = [v for k, v in sections["support"] if k == "member"]
    assert support_members == ["PJSIP/agent1,0,Alice", "PJSIP/agent2,0,Bruno"]


def test_without_an_operator_queue_the_fallback_uses_the_first_queue(settings: Settings) -> None:
    no_operator = replace(settings, queues=(QueueSettings(name="help", max_wait=30),),
                          agents=())
    assert " same => n,Queue(help,,,,30)" in confgen.extensions(no_operator)
    nothing = replace(settings, queues=(), agents=())
    assert "Queue(" not in confgen.extensions(nothing)


def test_music_on_hold_and_rtp_ports(settings: Settings) -> None:
    jazz = replace(settings, queues=(*settings.queues, QueueSettings("vip", moh_class="jazz")))
    moh = dict(parse(confgen.music_on_hold(jazz)))
    assert set(moh) == {"default", "jazz"}
    assert dict(moh["default"]) == {"mode": "files", "directory": "moh", "sort": "random"}
    rtp = options(parse(confgen.rtp(settings)), "general")
    assert (rtp["rtpstart"], rtp["rtpend"]) == ("20000", "20199")


@pytest.mark.parametrize("bad", ["x\ny", "x\ry", "x;y", "x[y", "x]y", "x\0y", " x"])
@pytest.mark.parametrize(("setting", "change"), [
    ("agents[0].name", lambda s, v: replace(s, agents=(replace(s.agents[0], name=v),))),
    ("agents[0].password",
     lambda s, v: replace(s, agents=(replace(s.agents[0], password=v),))),
    ("agents[0].contact", lambda s, v: replace(s, agents=(replace(s.agents[0], contact=v),))),
    ("agents[0].id", lambda s, v: replace(s, agents=(replace(s.agents[0], id=v),))),
    ("queues[0].name", lambda s, v: replace(s, queues=(replace(s.queues[0], name=v),))),
    ("queues[0].moh_class", lambda s, v: replace(s, queues=(replace(s.queues[0], moh_class=v),))),
    ("asterisk.ami_secret", lambda s, v: replace(s, asterisk=replace(s.asterisk, ami_secret=v))),
    ("asterisk.ami_username",
     lambda s, v: replace(s, asterisk=replace(s.asterisk, ami_username=v))),
    ("asterisk.sip_host", lambda s, v: replace(s, asterisk=replace(s.asterisk, sip_host=v))),
    ("ivr.number", lambda s, v: replace(s, ivr=replace(s.ivr, number=v))),
])
def test_no_value_can_inject_configuration(settings: Settings, setting: str,
                                           change: Callable[[Settings, str], Settings],
                                           bad: str) -> None:
    evil = change(settings, bad)
    with pytest.raises(ValueError, match=f"^{re.escape(setting)}:"):
        confgen.sandbox_files(evil)


def test_an_agent_cannot_take_the_demo_trunks_name(settings: Settings) -> None:
    taken = replace(settings, agents=(replace(settings.agents[0], id="anonymous"),))
    with pytest.raises(ValueError, match=r"agents\[0\]\.id: 'anonymous' is reserved"):
        confgen.pjsip_agents(taken)


def test_an_external_asterisk_gets_only_the_files_to_include(settings: Settings,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "asterisk"
    out.mkdir()
    written = confgen.write_generated(settings, out)
    assert sorted(p.name for p in written) == sorted([
        "callcenter-pjsip-agents.conf", "callcenter-extensions.conf",
        "callcenter-queues.conf", "callcenter-confbridge.conf", "callcenter-manager-user.conf",
        "callcenter-modules.conf", "callcenter-cel.conf", "callcenter-cel-sqlite3.conf"])
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        assert path.read_text() == confgen.include_files(settings)[path.name]
    assert "anonymous" not in "".join(p.read_text() for p in written)
    with pytest.raises(ValueError, match="not a folder"):
        confgen.write_generated(settings, tmp_path / "missing")


# --------------------------------------------------------------------------- outbound trunk


def with_outbound(settings: Settings, **values: object) -> Settings:
    outbound = replace(OutboundSettings(
        trunk_host="203.0.113.5:5080", caller_id="+551130000000", dial_timeout=25,
        extension_patterns=("2XXX",), allowed_prefixes=("+55",)), **values)
    return replace(settings, outbound=outbound)


def test_without_a_trunk_nothing_can_dial_out(settings: Settings) -> None:
    files = "".join(confgen.sandbox_files(settings).values())
    assert confgen.TRUNK_ENDPOINT not in files
    assert confgen.OUTBOUND_CONTEXT not in files


def test_the_trunk_is_an_endpoint_whose_own_calls_reach_the_ivr(settings: Settings) -> None:
    sections = parse(confgen.pjsip_agents(with_outbound(settings)))
    endpoint = options(sections, "callcenter-trunk", "endpoint")
    assert endpoint["context"] == "callers"
    assert endpoint["aors"] == "callcenter-trunk"
    assert endpoint["transport"] == confgen.TRANSPORT_NAME
    assert (endpoint["allow"], endpoint["dtmf_mode"]) == ("ulaw,alaw", "rfc4733")
    assert "outbound_auth" not in endpoint and "auth" not in endpoint
    assert "callcenter-trunk-auth" not in dict(sections)
    assert options(sections, "callcenter-trunk", "aor")["contact"] == "sip:203.0.113.5:5080"
    identify = [pairs for name, pairs in sections
                if name == "callcenter-trunk" and ("type", "identify") in pairs]
    assert identify == [[("type", "identify"), ("endpoint", "callcenter-trunk"),
                         ("match", "203.0.113.5")]]
    for agent in settings.agents:  # the agents are still there
        assert options(sections, agent.id, "endpoint")["context"] == "agents"


def test_the_trunk_authenticates_when_given_credentials_and_is_identified_as_told(
        settings: Settings) -> None:
    trunked = with_outbound(settings, trunk_host="sip.carrier.example",
                            trunk_username="acct42", trunk_password="p4ss!word",
                            trunk_match=("198.51.100.0/24", "198.51.100.200:5060",
                                         "[2001:db8::1]:5060", "2001:db8:1::5/64"))
    sections = parse(confgen.pjsip_agents(trunked))
    endpoint = options(sections, "callcenter-trunk", "endpoint")
    auth = options(sections, endpoint["outbound_auth"], "auth")
    assert (auth["auth_type"], auth["username"], auth["password"]) == (
        "userpass", "acct42", "p4ss!word")
    assert options(sections, "callcenter-trunk", "aor")["contact"] == "sip:sip.carrier.example"
    identify = next(pairs for name, pairs in sections
                    if name == "callcenter-trunk" and ("type", "identify") in pairs)
    assert [v for k, v in identify if k == "match"] == [
        "198.51.100.0/24", "198.51.100.200:5060", "[2001:db8::1]:5060", "2001:db8:1::/64"]
    v6 = with_outbound(settings, trunk_host="[2001:db8::7]:5062")
    aor = options(parse(confgen.pjsip_agents(v6)), "callcenter-trunk", "aor")
    assert aor["contact"] == "sip:[2001:db8::7]:5062"
    assert ("match", "2001:db8::7") in next(
        pairs for name, pairs in parse(confgen.pjsip_agents(v6))
        if name == "callcenter-trunk" and ("type", "identify") in pairs)


def test_transfers_dial_only_the_allowed_destinations_through_the_trunk(
        settings: Settings) -> None:
    trunked = with_outbound(settings, extension_patterns=("2XXX", "_3[0-4]x.", "2XXX"),
                            allowed_prefixes=("+55", "+1212"))
    dialplan = confgen.extensions(trunked)
    outbound = dialplan.split("[callcenter-outbound]\n")[1].strip().splitlines()
    dial = "Dial(PJSIP/${CALLCENTER_DIALLED}@callcenter-trunk,25)"
    number = "Set(CALLCENTER_DIALLED=${FILTER(+0-9,${EXTEN})})"
    assert outbound == [
        f"exten => _2XXX,1,{number}",
        f" same => n,{dial}",
        " same => n,Hangup()",
        f"exten => _3[0-4]X.,1,{number}",
        f" same => n,{dial}",
        " same => n,Hangup()",
        f"exten => _+55!,1,{number}",
        " same => n,Set(CALLERID(all)=<+551130000000>)",
        f" same => n,{dial}",
        " same => n,Hangup()",
        f"exten => _+1212!,1,{number}",
        " same => n,Set(CALLERID(all)=<+551130000000>)",
        f" same => n,{dial}",
        " same => n,Hangup()",
        # Every leg the IVR placed is reported when it ends, either side hanging up.
        'exten => h,1,GotoIf($["${CALLCENTER_TRANSFER_OUT}" != "1"]?done)',
        " same => n,UserEvent(CallcenterOutsideLeg,Number: ${CALLCENTER_DIALLED},"
        "DialStatus: ${DIALSTATUS},AnsweredMs: ${ANSWEREDTIME_MS})",
        " same => n(done),NoOp()",
    ]
    # Neither callers (the trunk's own calls included) nor agents can reach it.
    assert "include" not in dialplan
    assert "callcenter-outbound" not in dialplan.split("[agents]\n")[1].split("\n\n")[0]
    assert agent_extensions(dialplan)[-2:] == ["500", "_X."]


def test_without_a_caller_id_outside_calls_show_the_callers_own_number(
        settings: Settings) -> None:
    dialplan = confgen.extensions(with_outbound(settings, caller_id=""))
    outbound = dialplan.split("[callcenter-outbound]\n")[1]
    assert "CALLERID" not in outbound
    assert "exten => _+55!,1,Set(CALLCENTER_DIALLED=" in dialplan


def test_a_trunk_with_nothing_allowed_has_an_empty_outbound_context(settings: Settings) -> None:
    dialplan = confgen.extensions(with_outbound(settings, extension_patterns=(),
                                                allowed_prefixes=()))
    assert dialplan.rstrip().endswith("[callcenter-outbound]")


@pytest.mark.parametrize(("setting", "values"), [
    ("outbound.trunk_host", {"trunk_host": "10.0.0.1\n[evil]"}),
    ("outbound.trunk_host", {"trunk_host": "10.0.0.1;x"}),
    ("outbound.trunk_username", {"trunk_username": "a;b", "trunk_password": "secret"}),
    ("outbound.trunk_password", {"trunk_username": "acct", "trunk_password": "x\n[y]"}),
    ("outbound.trunk_match[1]", {"trunk_match": ("10.0.0.1", "10.0.0.2\n[z]")}),
    ("outbound.caller_id", {"caller_id": "+55)\nexten => x"}),
    ("outbound.caller_id", {"caller_id": "+5511;x"}),
    ("outbound.extension_patterns[0]", {"extension_patterns": ("2X,1,System(x)",)}),
    ("outbound.extension_patterns[0]", {"extension_patterns": ("2X\n[y]",)}),
    ("outbound.allowed_prefixes[0]", {"allowed_prefixes": ("+55!,1,System(x)",)}),
    ("outbound.allowed_prefixes[0]", {"allowed_prefixes": ("+55\n[y]",)}),
])
def test_no_outbound_value_can_inject_configuration(settings: Settings, setting: str,
                                                    values: dict[str, object]) -> None:
    evil = with_outbound(settings, **values)
    with pytest.raises(ValueError, match=f"^{re.escape(setting)}:"):
        confgen.sandbox_files(evil)


def test_an_agent_cannot_take_the_trunks_name(settings: Settings) -> None:
    taken = replace(settings, agents=(replace(settings.agents[0], id="callcenter-trunk"),))
    with pytest.raises(ValueError, match=r"agents\[0\]\.id: 'callcenter-trunk' is reserved"):
        confgen.pjsip_agents(taken)


def test_an_external_asterisk_gets_the_trunk_in_the_files_it_includes(settings: Settings) -> None:
    files = confgen.include_files(with_outbound(settings))
    assert "[callcenter-trunk]" in files["callcenter-pjsip-agents.conf"]
    assert "[callcenter-outbound]" in files["callcenter-extensions.conf"]


# --------------------------------------------------------------------------- database agents


def account(agent_id: str, name: str, *, queues: dict[str, int] | None = None,
            active: bool = True, contact: str | None = None,
            secret: str = "secret-of-1", digest: str | None = None) -> AgentAccount:
    """An agent as the database's AgentDirectory hands it out (only the secret's digest)."""
    if digest is None:
        digest = confgen.sip_digest(agent_id, secret)
    return AgentAccount(id=agent_id, name=name, sip_digest=digest, active=active,
                        queues=queues or {}, skills={}, contact=contact,
                        created_at=1_795_000_000.0, updated_at=1_795_000_000.0)


def accounts_like(settings: Settings) -> list[AgentAccount]:
    """The settings' agents as database agents: same ids, names, passwords and contacts."""
    return [account(a.id, a.name, queues=dict.fromkeys(a.queues, 0), contact=a.contact or None,
                    secret=a.password) for a in settings.agents]


def test_database_agents_get_exactly_the_endpoints_the_same_settings_agents_get(
        settings: Settings) -> None:
    from_database = confgen.pjsip_agent_endpoints(settings, accounts_like(settings))
    assert from_database == confgen.pjsip_agents(settings)
    trunked = with_outbound(settings)
    assert (confgen.pjsip_agent_endpoints(trunked, accounts_like(trunked))
            == confgen.pjsip_agents(trunked))


def test_a_database_agent_gets_an_authenticated_endpoint_with_its_digest_only(
        settings: Settings) -> None:
    agents = [account("Alice_01", "Alice Moreau", secret="r4nd0m-S3cret_xyz"),
              account("bob", "Bob", contact="sip:bob@127.0.0.1:5090")]
    sections = parse(confgen.pjsip_agent_endpoints(settings, agents))
    endpoint = options(sections, "Alice_01", "endpoint")
    assert endpoint["context"] == "agents"
    assert endpoint["callerid"] == '"Alice Moreau" <Alice_01>'
    auth = options(sections, endpoint["auth"], "auth")
    assert (auth["username"], auth["realm"], auth["password_digest"]) == (
        "Alice_01", "callcenter",
        "MD5:" + hashlib.md5(b"Alice_01:callcenter:r4nd0m-S3cret_xyz").hexdigest())
    assert "password" not in auth
    assert "r4nd0m" not in confgen.pjsip_agent_endpoints(settings, agents)
    assert "contact" not in options(sections, "Alice_01", "aor")
    assert options(sections, "bob", "aor")["contact"] == "sip:bob@127.0.0.1:5090"
    assert {name for name, _ in sections} == {"Alice_01", "Alice_01-auth", "bob", "bob-auth"}


def test_an_inactive_database_agent_has_no_endpoint_and_no_membership(
        settings: Settings) -> None:
    agents = [account("alice", "Alice", queues={"sales": 0}),
              account("gone", "Gone", queues={"sales": 0}, active=False)]
    assert "gone" not in {name for name, _ in parse(confgen.pjsip_agent_endpoints(settings,
                                                                                  agents))}
    sales = dict(parse(confgen.queues(settings, agents)))["sales"]
    assert [v for k, v in sales if k == "member"] == ["PJSIP/alice,0,Alice"]


def test_fallback_queues_mirror_database_memberships_with_the_tier_as_penalty(
        settings: Settings) -> None:
    agents = [
        account("alice", "Alice", queues={"sales": 0, "support": 2}),
        account("bruno", "Bruno", queues={"sales": 1, "vip": 0}),  # no queue vip in settings
        account("chen", "Chen"),  # in no queue
    ]
    sections = dict(parse(confgen.queues(settings, agents)))
    assert set(sections) == {"sales", "support", "operator"}
    members = {name: [v for k, v in pairs if k == "member"] for name, pairs in sections.items()}
    assert members == {"sales": ["PJSIP/alice,0,Alice", "PJSIP/bruno,1,Bruno"],
                       "support": ["PJSIP/alice,2,Alice"], "operator": []}
    assert dict(sections["sales"])["strategy"] == "leastrecent"  # the queue itself is unchanged


def test_without_database_agents_queues_are_built_from_the_settings_as_before(
        settings: Settings) -> None:
    logged_in = replace(settings, agents=tuple(a for a in settings.agents if a.logged_in))
    assert confgen.queues(settings) == confgen.queues(settings, accounts_like(logged_in))
    assert confgen.queues(settings, None) == confgen.queues(settings)


def test_the_file_sets_take_their_agents_from_the_database_when_given(
        settings: Settings, tmp_path: Path) -> None:
    agents = [account("zoe", "Zoe", queues={"operator": 1})]
    files = confgen.sandbox_files(settings, agents)
    assert files["callcenter-pjsip-agents.conf"] == confgen.pjsip_agent_endpoints(settings,
                                                                                  agents)
    assert files["callcenter-queues.conf"] == confgen.queues(settings, agents)
    assert "agent1" not in files["callcenter-pjsip-agents.conf"]
    from_settings = confgen.sandbox_files(settings)
    for name in files:
        if name not in ("callcenter-pjsip-agents.conf", "callcenter-queues.conf"):
            assert files[name] == from_settings[name]
    assert confgen.include_files(settings, agents) == {
        name: text for name, text in files.items() if name in confgen.include_files(settings)}
    out = tmp_path / "asterisk"
    out.mkdir()
    written = confgen.write_generated(settings, out, agents)
    assert (out / "callcenter-pjsip-agents.conf").read_text() == files[
        "callcenter-pjsip-agents.conf"]
    assert len(written) == len(confgen.include_files(settings)) == 8


@pytest.mark.parametrize(("setting", "agent"), [
    ("agent 'alice'.name", account("alice", "Al\n[evil]")),
    ("agent 'alice'.name", account("alice", 'Al "x"')),
    ("agent 'alice'.sip_digest", account("alice", "Alice", digest="0" * 31 + "\n[evil]")),
    ("agent 'alice'.sip_digest", account("alice", "Alice", digest="pw;x")),
    ("agent 'alice'.password", account("alice", "Alice", digest="")),
    ("agent 'alice'.contact", account("alice", "Alice", contact="sip:a@b\n[c]")),
    ("agent 'a]b'.id", account("a]b", "Alice")),
    ("agent 'anonymous'.id", account("anonymous", "Alice")),
])
def test_no_database_agent_value_can_inject_configuration(settings: Settings, setting: str,
                                                          agent: AgentAccount) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(setting)}:"):
        confgen.sandbox_files(settings, [agent])


def test_a_database_agent_with_a_comma_in_its_name_or_a_bad_tier_makes_no_queue_member(
        settings: Settings) -> None:
    with pytest.raises(ValueError, match=r"^agent 'alice'\.name: 'A, B' must not contain ','"):
        confgen.queues(settings, [account("alice", "A, B", queues={"sales": 0})])
    with pytest.raises(ValueError, match=r"^agent 'alice'\.queues\['sales'\]: tier -1 is not"):
        confgen.queues(settings, [account("alice", "Alice", queues={"sales": -1})])


def test_asterisk_logs_into_the_columns_the_import_reads(settings: Settings) -> None:
    """The generated mapping and the reader come from one table of (column, field)."""
    from callcenter.asterisk.cel_reader import COLUMNS, READ_EVENTS

    files = confgen.include_files(settings)
    mapping = files["callcenter-cel-sqlite3.conf"]
    assert "[callcenter-cel.db]" in mapping and "fields = eventtype, eventtime(float)" in mapping
    assert f"columns = {', '.join(COLUMNS)}" in mapping
    general = files["callcenter-cel.conf"]
    assert not any(line.startswith("[") for line in general.splitlines()), (
        "included inside cel.conf's [general]: no section of its own")
    [events] = [line for line in general.splitlines() if line.startswith("events = ")]
    assert set(READ_EVENTS) <= set(events.removeprefix("events = ").split(","))
