"""Rules a flow opts into with ``policy:``; today the customer-service (SAC) rules.

The checker reads the policy settings at the top of the file (``PolicySettings``) and, once
the nodes and their graph are known, has ``SacRules`` check the flow against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from yaml.nodes import Node

from callcenter.core.flows.graph import Edges, Report, menu_depths, walk
from callcenter.core.flows.model import FlowNode, MenuNode, SayNode, Target, show_target

POLICIES = ("sac",)  # customer-service rules a flow can opt into (docs/ivr.md)
MENU_DEPTH_RANGE = (1, 10)
PROTOCOL_VARIABLE = "call.protocol"


@dataclass(frozen=True)
class PolicySettings:
    """A flow's policy settings as read; a None setting was wrong (and reported)."""

    name: str
    at: Node  # the policy value, where flow-wide policy problems are reported
    attendant: Target | None
    attendant_key: str | None
    max_menu_depth: int | None


class SacRules:
    """The customer-service (SAC) rules: a person is reachable from every menu, menus are
    not nested too deeply, and the caller hears the protocol number before the first menu."""

    def __init__(
        self,
        report: Report,
        policy: PolicySettings,
        nodes: Mapping[str, FlowNode],
        edges: Mapping[str, Edges],
        option_keys: Mapping[str, Mapping[str, Node]],
    ) -> None:
        self.report = report
        self.policy = policy
        self.nodes = nodes
        self.edges = edges
        self.option_keys = option_keys  # "nodes.NAME" -> digit -> where the key is written

    def check(self, start: str) -> None:
        if self.policy.attendant_key is not None:
            for node in self.nodes.values():
                if isinstance(node, MenuNode):
                    self.check_attendant_option(node, self.policy.attendant_key)
        if self.policy.max_menu_depth is not None:
            self.check_depth(start, self.policy.max_menu_depth)
        self.check_protocol_told(start)

    def check_attendant_option(self, menu: MenuNode, key: str) -> None:
        where = f"nodes.{menu.name}"
        attendant = self.policy.attendant
        wanted = "the attendant" if attendant is None else show_target(attendant)
        chosen = menu.options.get(key)
        if chosen is None:
            self.report(
                self.edges[menu.name].key,
                f"{where}: a SAC flow offers the attendant in every menu: add option "
                f"{key!r} leading to {wanted}",
            )
        elif attendant is not None and chosen != attendant:
            self.report(
                self.option_keys[where][key],
                f"{where}.options: in a SAC flow key {key!r} is the attendant's and must lead "
                f"to {wanted}, not {show_target(chosen)}",
            )

    def check_depth(self, start: str, limit: int) -> None:
        """Depth of a menu: the menus on the shortest way from start to it, itself included."""
        for name, depth in menu_depths(start, self.edges).items():
            if self.edges[name].kind == "menu" and depth > limit:
                self.report(
                    self.edges[name].key,
                    f"nodes.{name}: this menu is {depth} menus deep from start (the shortest "
                    f"way); a SAC flow allows at most {limit} (max_menu_depth)",
                )

    def check_protocol_told(self, start: str) -> None:
        """Every way from start to a menu passes a say node speaking ``call.protocol``."""
        tells = {name for name, node in self.nodes.items() if tells_protocol(node)}
        def onward(name: str) -> list[str]:  # stop at menus and where the number is told
            edges = self.edges[name]
            if edges.kind == "menu" or name in tells:
                return []
            return [n for n in (*edges.silent, *edges.on_input) if n in self.edges]

        before_menus = set(walk(start, onward))
        if not tells & before_menus:
            self.report(
                self.policy.at,
                "policy: a SAC flow must tell the caller the protocol number before the first "
                f"menu (add a say node with kind digits and value {PROTOCOL_VARIABLE})",
            )
            return
        for name in sorted(before_menus - tells, key=list(self.edges).index):
            if self.edges[name].kind == "menu":
                self.report(
                    self.edges[name].key,
                    f"nodes.{name}: a caller can reach this menu without hearing the protocol "
                    f"number (every way from start must pass a say node with value "
                    f"{PROTOCOL_VARIABLE})",
                )


def tells_protocol(node: FlowNode) -> bool:
    return (
        isinstance(node, SayNode)
        and node.kind == "digits"
        and node.value.text.strip() == PROTOCOL_VARIABLE
    )
