"""IVR call flows: the YAML admins write, checked all at once and turned into a frozen
``Flow`` (docs/ivr.md).

- ``model``: the typed flow, its nodes and targets (what ``core/ivr.py`` runs);
- ``checker``: flow file text to a ``Flow``, or a ``FlowError`` with every problem at its
  file:line:column (``yamltree`` reads the text keeping positions);
- ``graph``: reachability, silent loops and menu depth;
- ``policies``: the rules a flow opts into (the SAC customer-service rules);
- ``names``: the forms of names and identifiers a flow may use.
"""

from callcenter.core.flows.checker import parse_flow
from callcenter.core.flows.errors import FlowError, FlowProblem
from callcenter.core.flows.model import Flow

__all__ = ["Flow", "FlowError", "FlowProblem", "parse_flow"]
