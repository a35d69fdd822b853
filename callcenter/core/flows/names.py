"""The forms of the names and identifiers a flow file may use, in one place.

The project's shared identifiers (an agent id, a flow name, a prompt name, an E.164 number)
come from their one home, ``core/identifiers.py``; the rest are the flow language's own.
"""

from __future__ import annotations

import re

# The project's shared identifiers have their one home; the flow language re-exports them.
from callcenter.core.identifiers import (  # noqa: F401 - re-exported for the flow checker
    AGENT_ID_RE,
    E164_RE,
    FLOW_NAME_RE,
    PROMPT_NAME_RE,
)

NODE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
EXTENSION_RE = re.compile(r"^[0-9]{1,20}$")
VARIABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z0-9_]{1,64}){0,4}$")
QUERY_NAME_RE = re.compile(r"^[A-Za-z0-9_.~-]{1,64}$")  # needs no percent-encoding
# Where a value sits in the JSON reply: keys joined by dots, e.g. "delivery.days".
RESULT_PATH_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}$"
)
LANGUAGE_RE = re.compile(r"^[a-z]{2}(?:_[A-Z]{2})?$")  # as prompt folders: en, pt_BR
TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # a FAQ topic or survey question id
SKILL_RE = re.compile(r"[a-z0-9_-]{1,40}")  # as agents' skills are stored
