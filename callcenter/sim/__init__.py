"""Discrete-event simulation of the call center: the real ACD on a virtual clock.

``simulate(scenario)`` runs a ``Scenario`` (from ``load_scenario(path)`` or
``single_queue_scenario(...)``); ``build_report(result)`` gives the figures,
``format_report(report)`` a text table and ``report.to_dict()`` a JSON-ready dict.
"""

from callcenter.sim.report import Report, build_report, format_report
from callcenter.sim.scenarios import (
    AgentGroup,
    CallType,
    QueueScenario,
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_from_toml,
    single_queue_scenario,
)
from callcenter.sim.simulator import SimulationResult, simulate

__all__ = [
    "AgentGroup",
    "CallType",
    "QueueScenario",
    "Report",
    "Scenario",
    "ScenarioError",
    "SimulationResult",
    "build_report",
    "format_report",
    "load_scenario",
    "scenario_from_toml",
    "simulate",
    "single_queue_scenario",
]
