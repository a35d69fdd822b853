"""What agents' phones can dial, and the conference bridges of nailed-up agents.

Feature codes (in the ``agents`` context only, so callers cannot reach them):

    *50   log in nailed-up: the phone stays connected in the agent's own bridge and calls
          are joined to it without ringing (hang up to log out)
    *51   log in (each call rings the phone)
    *52   pause with the first reason; *52N with the Nth of ``acd.pause_reasons``
    *53   ready (end a pause or a wrap-up)
    *54   log out

Each code runs the ``agent`` FastAGI script: the service identifies the agent by the
channel's PJSIP endpoint (not by the caller ID, which a phone chooses), changes the state and
says the outcome. For ``*50`` the script sets ``CALLCENTER_AGENT`` on the channel and the
dialplan then enters ``ConfBridge(callcenter-agent-<id>)`` with the agent's profile; a
caller is joined to that bridge by the service (``ConfBridge`` run from the caller's own
FastAGI session with the caller's profile). If the service cannot be reached, the phone hears
that the service is unavailable.

In the bridge the agent is the marked admin: when the agent hangs up, the caller is put out
of the bridge (``end_marked``) and the service decides what comes next (the survey, or the
end of the call). The agent ends a call without hanging up with ``*0`` (kick the caller; a
menu key cannot be ``#``: Asterisk reads a config line starting with ``#`` as a directive).
"""

from __future__ import annotations

from collections.abc import Sequence

NAILED_LOGIN = "*50"
LOGIN = "*51"
PAUSE = "*52"
READY = "*53"
LOGOUT = "*54"
FEATURES = {NAILED_LOGIN: "login-nailed", LOGIN: "login", PAUSE: "pause", READY: "ready",
            LOGOUT: "logout"}

AGENT_BRIDGE_PREFIX = "callcenter-agent-"
BRIDGE_PROFILE = "callcenter_agent_bridge"
AGENT_PROFILE = "callcenter_agent"
CALLER_PROFILE = "callcenter_caller"
AGENT_MENU = "callcenter_agent_menu"
AGENT_VARIABLE = "CALLCENTER_AGENT"  # set by the agent script when a nailed login succeeded


def agent_bridge(agent_id: str) -> str:
    """The conference a nailed-up agent sits in (agent ids are checked names)."""
    return f"{AGENT_BRIDGE_PREFIX}{agent_id}"


def caller_join_arguments(agent_id: str) -> str:
    """ConfBridge()'s arguments for a caller joining a nailed-up agent."""
    return f"{agent_bridge(agent_id)},{BRIDGE_PROFILE},{CALLER_PROFILE}"


def feature_code_lines(agi_url: str, pause_reasons: Sequence[str]) -> list[str]:
    """Extensions of the ``agents`` context; ``agi_url`` is confgen.agi_url's
    ``agi://host:port/<secret>``."""
    script = f"{agi_url}/agent"
    unavailable = " same => n,Playback(callcenter/sorry-service-unavailable)"
    lines = [
        "; Agents' feature codes: the callcenter service changes the agent's state.",
        f"exten => {NAILED_LOGIN},1,Answer()",
        f" same => n,AGI({script},{FEATURES[NAILED_LOGIN]})",
        f' same => n,GotoIf($["${{{AGENT_VARIABLE}}}" != ""]?bridge)',
        ' same => n,GotoIf($["${AGISTATUS}" != "SUCCESS"]?unavailable)',
        " same => n,Hangup()",
        f" same => n(bridge),ConfBridge({AGENT_BRIDGE_PREFIX}${{{AGENT_VARIABLE}}},"
        f"{BRIDGE_PROFILE},{AGENT_PROFILE},{AGENT_MENU})",
        " same => n,Hangup()",
        " same => n(unavailable),Playback(callcenter/sorry-service-unavailable)",
        " same => n,Hangup()",
    ]
    for code in (LOGIN, READY, LOGOUT):
        lines += [
            f"exten => {code},1,Answer()",
            f" same => n,AGI({script},{FEATURES[code]})",
            ' same => n,GotoIf($["${AGISTATUS}" = "SUCCESS"]?done)',
            unavailable,
            " same => n(done),Hangup()",
        ]
    # *52 alone: the first reason; *521 .. *52N: the Nth. Only configured numbers exist.
    last = len(pause_reasons)
    pattern = f"_{PAUSE}[1-{last}]" if last > 1 else f"{PAUSE}1"
    for exten, argument in ((PAUSE, "1"), (pattern, "${EXTEN:3}")):
        lines += [
            f"exten => {exten},1,Answer()",
            f" same => n,AGI({script},{FEATURES[PAUSE]},{argument})",
            ' same => n,GotoIf($["${AGISTATUS}" = "SUCCESS"]?done)',
            unavailable,
            " same => n(done),Hangup()",
        ]
    return lines


def confbridge_profiles() -> str:
    """confbridge.conf sections for nailed-up agents' bridges (no settings involved)."""
    return "\n".join([
        "; Nailed-up agents: one conference per agent, the agent marked, callers joined",
        "; by the callcenter service. Quiet: no join/leave sounds, no counts.",
        f"[{BRIDGE_PROFILE}]",
        "type = bridge",
        "max_members = 4",  # agent, caller, and room for a consult or a barging supervisor
        "",
        f"[{AGENT_PROFILE}]",
        "type = user",
        "marked = yes",
        "admin = yes",
        "quiet = yes",
        "music_on_hold_when_empty = no",
        "announce_only_user = no",
        "dsp_drop_silence = no",
        "",
        f"[{CALLER_PROFILE}]",
        "type = user",
        "quiet = yes",
        "end_marked = yes",  # the agent hung up: the caller leaves the bridge (ENDMARKED)
        "announce_only_user = no",
        "music_on_hold_when_empty = no",
        "",
        f"[{AGENT_MENU}]",
        "type = menu",
        "*0 = admin_kick_last",  # end the call with the caller; the agent stays connected
        "",
    ])
