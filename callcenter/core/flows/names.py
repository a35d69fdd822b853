"""The forms of the names and identifiers a flow file may use, in one place.

Some are the project's shared identifiers (an agent id, a flow name, an E.164 number, a
language code); keeping every pattern here means they can be taken from one common home by
changing the imports of this module alone.
"""

from __future__ import annotations

import re

FLOW_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
# A prompt name becomes part of a file path: no dots, no slashes, ever.
PROMPT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
AGENT_ID_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # as agent ids in the settings
EXTENSION_RE = re.compile(r"^[0-9]{1,20}$")
E164_RE = re.compile(r"^\+[1-9][0-9]{7,14}$")  # + then 8-15 digits, no leading zero
VARIABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z0-9_]{1,64}){0,4}$")
QUERY_NAME_RE = re.compile(r"^[A-Za-z0-9_.~-]{1,64}$")  # needs no percent-encoding
# Where a value sits in the JSON reply: keys joined by dots, e.g. "delivery.days".
RESULT_PATH_RE = re.compile(
    r"^[A-Za-z_][A-Za-z0-9_]{0,63}(?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){0,7}$"
)
LANGUAGE_RE = re.compile(r"^[a-z]{2}(?:_[A-Z]{2})?$")  # as prompt folders: en, pt_BR
TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # a FAQ topic or survey question id
SKILL_RE = re.compile(r"[a-z0-9_-]{1,40}")  # as agents' skills are stored
