"""A flow's graph: which node leads where, what is reached from start, the loops a caller
who presses nothing can never leave, and how many menus deep each node is.

The checker records each node's ``Edges`` while it reads the file (so a problem can be
placed at the node's key); these functions work on that record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from yaml.nodes import Node, ScalarNode

# Report a problem at a place in the file.
Report = Callable[[Node, str], None]

@dataclass
class Edges:
    """Where a node leads: ``silent`` edges are taken when the caller presses nothing."""

    key: ScalarNode
    kind: str  # the node type
    silent: list[str]
    on_input: list[str]
    waits_for_caller: bool = False  # its ``on_input`` edges need a key press


def check_graph(start: str, edges: Mapping[str, Edges], report: Report) -> None:
    """Nodes never reached from ``start``, and loops a silent caller can never leave."""

    def onward(name: str) -> list[str]:
        node_edges = edges.get(name)
        return [*node_edges.silent, *node_edges.on_input] if node_edges else []

    reached = set(walk(start, onward))
    for name, node_edges in edges.items():
        if name not in reached:
            report(node_edges.key, f"nodes.{name}: never reached from start {start!r}")
    for loop in silent_loops(edges):
        first = edges[loop[0]]
        route = " -> ".join([*loop, loop[0]])
        kinds = {edges[n].kind for n in loop}
        if kinds == {"play"}:
            message = f"play nodes loop with no menu ({route}): the caller can never leave"
        elif not any(edges[n].waits_for_caller for n in loop):
            message = f"nodes loop without ever waiting for the caller ({route})"
        else:
            message = (
                f"a caller who presses nothing loops forever ({route}); "
                "next/on_exhausted must end at a queue or a hangup"
            )
        report(first.key, f"nodes.{loop[0]}: {message}")


def menu_depths(start: str, edges: Mapping[str, Edges]) -> dict[str, int]:
    """For each node reached from start, the fewest menus on a way to it (itself included):
    a breadth-first walk where entering a menu costs 1 and any other node 0."""

    def cost(name: str) -> int:
        return 1 if edges[name].kind == "menu" else 0

    depths = {start: cost(start)}
    queue: deque[str] = deque([start])
    while queue:
        name = queue.popleft()
        for onward in [*edges[name].silent, *edges[name].on_input]:
            if onward not in edges:
                continue
            depth = depths[name] + cost(onward)
            if depth < depths.get(onward, depth + 1):
                depths[onward] = depth
                # 0-1 breadth-first: free steps go first, so depths come out in order.
                if cost(onward):
                    queue.append(onward)
                else:
                    queue.appendleft(onward)
    return depths


def walk(start: str, neighbours: Callable[[str], list[str]]) -> Iterator[str]:
    seen = {start}
    stack = [start]
    while stack:
        name = stack.pop()
        yield name
        for following in neighbours(name):
            if following not in seen:
                seen.add(following)
                stack.append(following)


def silent_loops(edges: Mapping[str, Edges]) -> list[list[str]]:
    """One cycle of silent edges per group of nodes that silent edges link in a circle, as a
    node list starting at the group's first node in file order.

    A condition or time node has two silent edges, so this is a graph, not a chain: each
    strongly connected group is found (Tarjan), then a shortest circle through its first node.
    """
    order = {name: i for i, name in enumerate(edges)}

    def silent(name: str) -> list[str]:
        return [n for n in edges[name].silent if n in edges]

    loops: list[list[str]] = []
    for group in strongly_connected(list(edges), silent):
        first = min(group, key=order.__getitem__)
        if len(group) == 1 and first not in silent(first):
            continue
        members = set(group)
        # Breadth-first from ``first`` back to itself, inside the group.
        came_from: dict[str, str] = {}
        frontier = [first]
        end = None
        while frontier and end is None:
            following: list[str] = []
            for name in frontier:
                for onward in silent(name):
                    if onward == first:
                        end = name
                        break
                    if onward in members and onward not in came_from:
                        came_from[onward] = name
                        following.append(onward)
                if end is not None:
                    break
            frontier = following
        assert end is not None, "a strongly connected group always has a circle"
        cycle = [end]
        while cycle[-1] != first:
            cycle.append(came_from[cycle[-1]])
        loops.append(cycle[::-1])
    return sorted(loops, key=lambda loop: order[loop[0]])


def strongly_connected(
    names: list[str], neighbours: Callable[[str], list[str]]
) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (flows may be long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    work: list[tuple[str, Iterator[str]]] = []  # the depth-first path, with edges left

    def open_(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        work.append((name, iter(neighbours(name))))

    for root in names:
        if root in index:
            continue
        open_(root)
        while work:
            name, pending = work[-1]
            onward = next(pending, None)
            if onward is not None:
                if onward not in index:
                    open_(onward)
                elif onward in on_stack:
                    low[name] = min(low[name], index[onward])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[name])
            if low[name] == index[name]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == name:
                        break
                groups.append(group)
    return groups
