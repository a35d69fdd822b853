"""Every identifier rule and shared default, in one place; everything else imports them.

An agent id is also a SIP user and a PJSIP object name; queue, flow and pause reason names
go into the dialplan and into URLs. Each rule is a compiled pattern (always used with
``fullmatch``) plus the human wording the error messages use, so a rule and its explanation
cannot drift apart. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A lowercase name: what the settings ask of agent ids, queue, flow and pause reason names.
_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
_NAME_WORDING = "a lowercase letter, then up to 31 lowercase letters, digits, '-' or '_'"


@dataclass(frozen=True)
class IdentifierRule:
    """A named pattern and how to say it to a person."""

    what: str  # "an agent id"
    regex: re.Pattern[str]
    wording: str  # what is allowed, in words

    def fullmatch(self, value: object) -> bool:
        return isinstance(value, str) and self.regex.fullmatch(value) is not None

    def check(self, where: str, value: object) -> str:
        """``value`` if it follows the rule; else ValueError naming ``where`` and the rule."""
        if not self.fullmatch(value):
            shown = value[:60] if isinstance(value, str) else value
            raise ValueError(f"{where}: {shown!r} is not {self.what} ({self.wording})")
        assert isinstance(value, str)
        return value


AGENT_ID_RE = re.compile(_NAME)  # also the agent's SIP user and PJSIP endpoint name
QUEUE_NAME_RE = re.compile(_NAME)
FLOW_NAME_RE = re.compile(_NAME)  # dialplans/<flow>.yaml
CAMPAIGN_NAME_RE = re.compile(_NAME)  # outbound campaigns: in URLs, logs and records
PAUSE_REASON_RE = re.compile(_NAME)  # except "RONA", which the ACD sets itself
# Names the settings give Asterisk's own objects: the AMI user, the instance (it names the
# sandbox's files and processes) and a queue's music-on-hold class.
ASTERISK_NAME_RE = re.compile(_NAME)
# Prompts: two rules, on purpose. Neither lets a name leave its folder or split an AGI
# argument (no '/', '.', space or control character).
# A prompt a flow plays (ivr_prompts/<language>/<name>.wav): any sound file there, a
# recording an admin put there by hand under their own name (say "Welcome") included.
PROMPT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
# A prompt we write ourselves (`callcenter prompts build`: a prompts.toml entry, a converted
# recording): lowercase, because names differing only in case ("Hello", "hello") are one
# file on a case-insensitive file system (a checkout on macOS or Windows, a mounted volume)
# and one would silently overwrite the other; and a subset of PROMPT_NAME_RE, so that a
# flow can play every prompt we build.
BUILT_PROMPT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
E164_RE = re.compile(r"^\+[1-9][0-9]{7,14}$")  # + then 8-15 digits, no leading zero
# What the agent store accepted before its ids followed AGENT_ID_RE: lookups still take it,
# so that rows stored by an older version stay readable (new agents follow AGENT_ID_RE).
STORED_AGENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")

AGENT_ID = IdentifierRule("an agent id", AGENT_ID_RE, _NAME_WORDING)
QUEUE_NAME = IdentifierRule("a queue name", QUEUE_NAME_RE, _NAME_WORDING)
FLOW_NAME = IdentifierRule("a flow name", FLOW_NAME_RE, _NAME_WORDING)
CAMPAIGN_NAME = IdentifierRule("a campaign name", CAMPAIGN_NAME_RE, _NAME_WORDING)
PAUSE_REASON = IdentifierRule("a pause reason", PAUSE_REASON_RE, _NAME_WORDING)
PROMPT_NAME = IdentifierRule("a prompt name", PROMPT_NAME_RE,
                             "letters, digits, '-' and '_', up to 64")
BUILT_PROMPT_NAME = IdentifierRule("a prompt name", BUILT_PROMPT_NAME_RE,
                                   "lowercase letters, digits, '-' or '_'")
E164_NUMBER = IdentifierRule("an E.164 number", E164_RE,
                             "+, then 8-15 digits, e.g. +551130000000")
STORED_AGENT_ID = IdentifierRule("an agent id", STORED_AGENT_ID_RE,
                                 "1-40 letters, digits, '-' or '_'")


# The validators: each returns the value if it follows the rule, else raises ValueError.
check_agent_id = AGENT_ID.check
check_queue_name = QUEUE_NAME.check
check_flow_name = FLOW_NAME.check
check_campaign_name = CAMPAIGN_NAME.check
check_pause_reason = PAUSE_REASON.check
check_prompt_name = PROMPT_NAME.check
check_e164 = E164_NUMBER.check


# ------------------------------------------------------------------------------- defaults

# The pause reasons agents may give when the settings name none (feature code *52N picks
# the Nth). The ACD adds RONA itself. These are what the running service has always used
# (config.py's list); core/acd.py's own default used to differ (RONA instead of coaching).
DEFAULT_PAUSE_REASONS: tuple[str, ...] = ("break", "lunch", "training", "meeting", "coaching")
RONA = "RONA"  # the pause reason the ACD gives an agent who let a call ring out
MAX_PAUSE_REASONS = 9  # *52N: one digit
