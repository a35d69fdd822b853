"""The SIPp callers' generated scenarios (tests/support/sipp.py), read as sipp reads them.

A small walker follows a scenario the way sipp 3.6 does (messages numbered in order, labels
not counted; an optional receive lets a different response through to the next receive;
``[branch-N]`` is the branch of the message N before) while the far end answers with given
responses, and reports what the caller sent and logged. The challenged caller's exchanges
(INVITE, 401, ACK on the INVITE's branch, INVITE with credentials, ...) are checked that way;
the real exchange with Asterisk is tests/integration/test_agent_dialing.py.

The unauthenticated caller must stay as it was before authentication existed: its scenarios
are compared with texts captured from the builder before that change.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.sipp import (
    INVITE_REFUSALS,
    AgentPlan,
    CallerPlan,
    agent_scenario,
    caller_scenario,
)

AGENT, PASSWORD = "agent2", "s3cret-Pass.word"
AUTH_LINE = f"[authentication username={AGENT} password={PASSWORD}]"
STATIC_CALLER = Path(__file__).resolve().parents[1] / "sipp" / "caller.xml"

# ---------------------------------------------------------------- the unauthenticated caller

# caller_scenario(CallerPlan(dtmf=((1500, "2"), (300, "#")), hangup_after_ms=8000)) before
# the challenge existed (pcap paths, which depend on the temporary folder, as <pcap>).
BEFORE_DTMF_AND_HANGUP = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A caller: INVITE [service], ACK the answer, then the plan's DTMF and hang-up. -->
<scenario name="callcenter caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:5551234@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:5551234@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=sendrecv
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:5551234@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:5551234@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop><action><log message="callcenter-event: [clock_tick] [call_id] answered"/></action></nop>
  <recv request="BYE" timeout="1500" ontimeout="step_0" next="remote_bye"/>
  <label id="step_0"/>
  <nop><action><exec play_pcap_audio="<pcap>"/></action></nop>
  <nop><action><log message="callcenter-event: [clock_tick] [call_id] dtmf 2"/></action></nop>
  <recv request="BYE" timeout="300" ontimeout="step_1" next="remote_bye"/>
  <label id="step_1"/>
  <nop><action><exec play_pcap_audio="<pcap>"/></action></nop>
  <nop><action><log message="callcenter-event: [clock_tick] [call_id] dtmf #"/></action></nop>
  <recv request="BYE" timeout="6200" ontimeout="hang_up" next="remote_bye"/>
  <label id="hang_up"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:5551234@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:5551234@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
  <nop><action><log message="callcenter-event: [clock_tick] [call_id] local-bye"/></action></nop>
  <nop next="end"/>
  <label id="remote_bye"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <nop><action><log message="callcenter-event: [clock_tick] [call_id] remote-bye"/></action></nop>
  <label id="end"/>
</scenario>
"""

# sha256 of the other plans' scenarios before the change (pcap paths as <pcap>).
BEFORE_SHA256 = {
    "default": "bb4ac2538da58c2477dc51efb891fbd23b3ffe5aa0df4f520e8d65c487892a64",
    "dtmf_and_hangup": "fd05cef2531275736bc78c73740e386185b9dce1e10ec7f4a7a06319a6e75dd1",
    "dtmf_then_their_bye": "b6a91a60791e51a84c834b9e9fbc6974c22aafcf9c0c6ec8f1b88a661e4946b3",
    "speech_then_key": "f35600b3b995044cef2a514146548a67a66bf6365855bd36c1571a763c32f452",
    "hangup_only": "6f3a988695c619357a8afff55f259eeefc22a70490870d6fdf0fd839207caa3c",
}
PLANS = {
    "default": CallerPlan(),
    "dtmf_and_hangup": CallerPlan(dtmf=((1500, "2"), (300, "#")), hangup_after_ms=8000),
    "dtmf_then_their_bye": CallerPlan(dtmf=((1000, "1"),), max_call_ms=30000,
                                      caller_number="777"),
    "speech_then_key": CallerPlan(dtmf=((4000, "5"),), speech=((500, 2000),),
                                  hangup_after_ms=4000),
    "hangup_only": CallerPlan(hangup_after_ms=3000),
}


def without_pcap_paths(scenario: str) -> str:
    return re.sub(r'play_pcap_audio="[^"]+"', 'play_pcap_audio="<pcap>"', scenario)


@pytest.mark.parametrize("name", sorted(PLANS))
def test_the_unauthenticated_scenarios_are_byte_identical_to_before(name):
    scenario = without_pcap_paths(caller_scenario(PLANS[name]))
    assert hashlib.sha256(scenario.encode("iso-8859-1")).hexdigest() == BEFORE_SHA256[name]


def test_the_unauthenticated_scenario_with_keys_and_hang_up_reads_as_before():
    scenario = caller_scenario(PLANS["dtmf_and_hangup"])
    assert without_pcap_paths(scenario) == BEFORE_DTMF_AND_HANGUP
    assert "authentication" not in scenario and "refused" not in scenario


def test_the_static_caller_file_is_still_the_default_scenario():
    assert caller_scenario() == STATIC_CALLER.read_text(encoding="iso-8859-1")


# ---------------------------------------------------------------- a walker, as sipp reads them


@dataclass(frozen=True)
class Sent:
    method: str
    cseq: str  # "2 INVITE"
    branch: int  # the number of the message whose branch it carries (its own: a new one)
    text: str


@dataclass
class Walk:
    sent: list[Sent] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    outcome: str = ""  # completed | aborted | unexpected <code> | waiting for their BYE

    def requests(self) -> list[tuple[str, str]]:
        return [(message.method, message.cseq) for message in self.sent]


def parsed(scenario: str) -> tuple[list[ET.Element], dict[str, int]]:
    """sipp's messages (every element but a label), and each label's message number."""
    root = ET.fromstring(scenario.encode("iso-8859-1"))
    messages: list[ET.Element] = []
    labels: dict[str, int] = {}
    for element in root:
        if element.tag == "label":
            labels[element.attrib["id"]] = len(messages)
        else:
            messages.append(element)
    return messages, labels


def sent_message(number: int, element: ET.Element) -> Sent:
    text = "\n".join(line.strip() for line in (element.text or "").strip().splitlines())
    if text.startswith("SIP/2.0 "):  # our answer to their request: its headers are theirs
        return Sent(method=text.splitlines()[0], cseq="theirs", branch=-1, text=text)
    branch = re.search(r"branch=\[branch(?:-(\d+))?\]", text)
    cseq = re.search(r"^CSeq: (.+)$", text, re.MULTILINE)
    assert branch and cseq, text
    return Sent(method=text.split(" ", 1)[0], cseq=cseq.group(1),
                branch=number - int(branch.group(1) or 0), text=text)


def walk(scenario: str, responses: list[int], *, their_bye: bool = False) -> Walk:
    """Follow the caller's scenario while the far end answers with ``responses`` in order.
    The far end sends no BYE while the caller has other things to do (those waits time out);
    at the caller's last wait, it sends one if ``their_bye``, else that wait times out too."""
    messages, labels = parsed(scenario)
    pending = list(responses)
    result = Walk()
    number = 0
    while number < len(messages):
        element = messages[number]
        goto = element.get("next")
        if element.tag == "send":
            result.sent.append(sent_message(number, element))
        elif element.tag == "nop":
            log = element.find("action/log")
            if log is not None:
                result.events.append(log.attrib["message"].split("[call_id] ", 1)[1])
        elif element.tag == "recv" and "response" in element.attrib:
            assert pending, f"message {number} waits for a response none of {responses}"
            code = str(pending.pop(0))
            while element.get("response") != code:
                if element.tag != "recv" or element.get("optional") != "true":
                    result.outcome = f"unexpected {code}"
                    return result
                number += 1
                element = messages[number]
            goto = element.get("next")
        elif element.tag == "recv":  # a request from the far end
            if "ontimeout" in element.attrib:
                goto = element.attrib["ontimeout"]
            elif their_bye and element.get("request") == "BYE":
                their_bye = False
            else:  # a timeout with nowhere to go fails the call
                result.outcome = "aborted"
                return result
        number = labels[goto] if goto else number + 1
    assert not pending, f"responses left over: {pending}"
    result.outcome = "completed"
    return result


def test_the_walker_reads_the_unauthenticated_caller_as_sipp_does():
    calling = walk(caller_scenario(PLANS["dtmf_and_hangup"]), [100, 180, 200, 200])

    assert calling.requests() == [("INVITE", "1 INVITE"), ("ACK", "1 ACK"), ("BYE", "2 BYE")]
    assert len({message.branch for message in calling.sent}) == 3
    assert calling.events == ["answered", "dtmf 2", "dtmf #", "local-bye"]
    assert calling.outcome == "completed"


# ---------------------------------------------------------------- the challenged caller


def agent_plan(**settings: object) -> CallerPlan:
    return CallerPlan(auth=(AGENT, PASSWORD), **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("responses", [
    [401, 100, 180, 200, 200],
    [100, 401, 100, 183, 200, 200],  # a 100 Trying before the challenge too
    [401, 200, 200],
])
def test_a_challenged_caller_acks_the_401_then_invites_again_with_its_credentials(responses):
    calling = walk(caller_scenario(agent_plan(dtmf=((1000, "1"), (2000, "#")),
                                              hangup_after_ms=5000)), responses)

    assert calling.requests() == [("INVITE", "1 INVITE"), ("ACK", "1 ACK"),
                                  ("INVITE", "2 INVITE"), ("ACK", "2 ACK"), ("BYE", "3 BYE")]
    first_invite, challenge_ack, second_invite, answer_ack, bye = calling.sent
    # The ACK of a refusal belongs to the INVITE's transaction: the same branch.
    assert challenge_ack.branch == first_invite.branch
    # The credentials make a new transaction; the ACK of a 200 and the BYE, new ones too.
    assert len({first_invite.branch, second_invite.branch, answer_ack.branch,
                bye.branch}) == 4
    assert [AUTH_LINE in message.text for message in calling.sent] == [
        False, False, True, False, False]
    for message in calling.sent:
        assert f'From: "{AGENT}" <sip:{AGENT}@[local_ip]:[local_port]>;tag=' in message.text
        assert f"Contact: <sip:{AGENT}@[local_ip]:[local_port]>" in message.text
        assert "Call-ID: [call_id]" in message.text
    # The ACKs and the BYE carry the To tag of the response they follow.
    assert all("[peer_tag_param]" in message.text
               for message in (challenge_ack, answer_ack, bye))
    assert calling.events == ["answered", "dtmf 1", "dtmf #", "local-bye"]
    assert calling.outcome == "completed"


def test_a_challenged_caller_without_hang_up_answers_the_far_end_bye():
    scenario = caller_scenario(agent_plan(dtmf=((1000, "5"),), max_call_ms=30_000))
    calling = walk(scenario, [401, 200], their_bye=True)

    assert calling.requests() == [("INVITE", "1 INVITE"), ("ACK", "1 ACK"),
                                  ("INVITE", "2 INVITE"), ("ACK", "2 ACK"),
                                  ("SIP/2.0 200 OK", "theirs")]
    assert calling.events == ["answered", "dtmf 5", "remote-bye"]
    assert calling.outcome == "completed"
    # Without their BYE, the call fails once max_call_ms has passed.
    assert walk(scenario, [401, 200]).outcome == "aborted"
    assert '<recv request="BYE" timeout="30000" next="remote_bye"/>' in scenario


def test_the_challenged_caller_plays_the_same_key_presses_and_speech():
    talk = {"dtmf": ((1000, "7"), (4000, "1"), (300, "1")), "speech": ((1500, 2000),),
            "hangup_after_ms": 9000}
    challenged = caller_scenario(agent_plan(**talk))
    plain = caller_scenario(CallerPlan(**talk))  # type: ignore[arg-type]

    def played(scenario: str) -> list[str]:
        return re.findall(r'play_pcap_audio="([^"]+)"', scenario)

    assert played(challenged) == played(plain)
    assert len(played(plain)) == 4
    assert all(Path(pcap).is_file() for pcap in played(plain))


@pytest.mark.parametrize("code", INVITE_REFUSALS)
def test_an_expected_refusal_is_acked_on_the_invite_branch_and_succeeds(code):
    calling = walk(caller_scenario(agent_plan(expect_refused=True)), [401, 100, code])

    assert calling.requests() == [("INVITE", "1 INVITE"), ("ACK", "1 ACK"),
                                  ("INVITE", "2 INVITE"), ("ACK", "2 ACK")]
    _, _, second_invite, refusal_ack = calling.sent
    assert refusal_ack.branch == second_invite.branch
    assert calling.events == [f"invite-refused {code}"]
    assert calling.outcome == "completed"


def test_a_refusal_not_expected_is_acked_logged_and_fails_the_call():
    calling = walk(caller_scenario(agent_plan(dtmf=((1000, "1"),))), [401, 403])

    assert calling.requests()[-1] == ("ACK", "2 ACK")
    assert calling.sent[-1].branch == calling.sent[2].branch
    assert calling.events == ["invite-refused 403", "failed: INVITE refused"]
    assert calling.outcome == "aborted"


def test_an_answer_when_a_refusal_was_expected_fails_the_call():
    calling = walk(caller_scenario(agent_plan(expect_refused=True)), [401, 200])

    assert calling.requests()[-1] == ("ACK", "2 ACK")
    assert calling.events == ["answered", "failed: answered although a refusal was expected"]
    assert calling.outcome == "aborted"


def test_a_caller_is_refused_on_its_first_invite_without_a_challenge():
    # The same caller, challenged by nobody: Asterisk answers 200 at once, not 401.
    assert walk(caller_scenario(agent_plan()), [100, 200]).outcome == "unexpected 200"


def test_an_unauthenticated_caller_can_expect_a_refusal():
    calling = walk(caller_scenario(CallerPlan(expect_refused=True)), [100, 404])

    assert calling.requests() == [("INVITE", "1 INVITE"), ("ACK", "1 ACK")]
    assert calling.sent[1].branch == calling.sent[0].branch
    assert "authentication" not in caller_scenario(CallerPlan(expect_refused=True))
    assert calling.events == ["invite-refused 404"]
    assert calling.outcome == "completed"


@pytest.mark.parametrize(("settings", "complaint"), [
    ({"auth": ("agent 2", PASSWORD)}, "auth user"),
    ({"auth": (AGENT, "pass]word")}, "auth password"),
    ({"auth": (AGENT, "")}, "auth password"),
    ({"auth": (AGENT,)}, "need (SIP user, password)"),
    ({"auth": "ab"}, "need (SIP user, password)"),
    ({"expect_refused": True, "dtmf": ((1000, "1"),)}, "expect_refused"),
    ({"expect_refused": True, "hangup_after_ms": 1000}, "expect_refused"),
    ({"dtmf": ((1000, "1"),), "hold": (500, 1000)}, "hold (500, 1000): after the last key"),
    ({"hold": (500, 0)}, "for some time"),
    ({"hold": (500, 1000), "hangup_after_ms": 1500}, "must come after the hold ends"),
    ({"hold": (500, 1000), "auth": (AGENT, PASSWORD)}, "hold: for callers without auth"),
])
def test_bad_plans_are_refused_with_what_is_wrong(settings, complaint):
    with pytest.raises(ValueError, match=re.escape(complaint)):
        CallerPlan(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(("settings", "complaint"), [
    ({"busy": True, "hold": (0, 1000)}, "needs an answered call"),
    ({"hold": (-1, 1000)}, "needs an answered call"),
    ({"hold": (1000, 1000), "hangup_after_ms": 2000}, "must come after the hold ends"),
])
def test_bad_agent_holds_are_refused_with_what_is_wrong(settings, complaint):
    with pytest.raises(ValueError, match=re.escape(complaint)):
        AgentPlan(**settings)  # type: ignore[arg-type]


def test_a_holding_phone_reinvites_with_sendonly_then_sendrecv_and_its_bye_comes_after():
    """Both phones: each re-INVITE offers a newer SDP version, the BYE takes the next CSeq."""
    agent = agent_scenario(AgentPlan(hold=(1000, 2000), hangup_after_ms=5000))
    caller = caller_scenario(CallerPlan(hold=(1000, 2000), hangup_after_ms=5000))
    for scenario, bye in ((agent, "CSeq: 3 BYE"), (caller, "CSeq: 4 BYE")):
        assert scenario.index("a=sendonly") < scenario.index("a=sendrecv", scenario.index(
            "a=sendonly")) < scenario.index(bye), scenario
        assert scenario.index("] held") < scenario.index("] unheld") < scenario.index(bye)
        assert "2353687638" in scenario or "2353687639" in scenario


# ---------------------------------------------------------------- agent_dials' own checks


@pytest.mark.parametrize(("agent_id", "extension", "plan", "complaint"), [
    ("agent9", "100", CallerPlan(), "no agent 'agent9'"),
    (AGENT, "1#2", CallerPlan(), "extension '1#2'"),
    (AGENT, "", CallerPlan(), "extension ''"),
    (AGENT, "100", CallerPlan(auth=(AGENT, PASSWORD)), "already has auth"),
])
def test_agent_dials_refuses_what_it_cannot_dial_before_starting_sipp(
        tmp_path, agent_id, extension, plan, complaint):
    from tests.support.asterisk import sandbox_settings  # only builds settings
    from tests.support.calls import agent_dials  # imports the whole service

    settings = sandbox_settings(tmp_path, agents=[
        {"id": AGENT, "name": "Agent2", "queues": ["support"]}])
    center = SimpleNamespace(settings=settings)
    with pytest.raises(ValueError, match=re.escape(complaint)):
        agent_dials(center, agent_id, None, extension, plan)  # type: ignore[arg-type]
