"""Queues, live: ``/api/queues`` (``ENDPOINTS`` at the end). The ``AgentAdmin``
(features/agents/admin.py) answers for queues too: their members are agents."""

from __future__ import annotations

from aiohttp import web

from callcenter.features.agents.http import AGENTS, admin_errors
from callcenter.features.queues.schemas import (
    Queue,
    QueueList,
    QueuePath,
)
from callcenter.web.auth import FLOOR
from callcenter.web.contract import (
    Endpoint,
    failed,
    ok,
)


async def list_queues(request: web.Request) -> web.Response:
    queues = await request.app[AGENTS].queues()
    return QueueList(queues=[Queue.of(queue) for queue in queues]).response()


async def show_queue(request: web.Request, path: QueuePath) -> web.Response:
    with admin_errors():
        queue = await request.app[AGENTS].queue(path.name)
    return Queue.of(queue).response()


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/queues", list_queues, FLOOR,
             "Every queue, with its callers and members now", "acd",
             {200: ok(QueueList, "The queues, in the settings' order.")},
             takes_no_query=True),
    Endpoint("GET", "/api/queues/{name}", show_queue, FLOOR,
             "One queue, with its callers and members now", "acd",
             {200: ok(Queue), 404: failed("No such queue.")},
             path_args=QueuePath, takes_no_query=True),
)
