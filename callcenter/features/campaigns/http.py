"""Outbound campaigns: ``/api/campaigns`` (``ENDPOINTS`` at the end).

Campaign managers and admins create campaigns, change their settings while they dial
nothing (created or paused), and start, pause and stop them; supervisors may read them.
Errors: 400 bad input (naming the field), 404 unknown campaign, 409 a name taken or a change
the campaign's state does not allow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from callcenter.core.campaigns import Campaign, CampaignState
from callcenter.features.campaigns.schemas import (
    CampaignAnswer,
    CampaignChanges,
    CampaignList,
    CampaignPath,
    NewCampaign,
    StateRequest,
)
from callcenter.features.campaigns.store import (
    CampaignNotFound,
    CampaignRepository,
)
from callcenter.web.auth import CAMPAIGN_MANAGERS, CAMPAIGN_READERS, current_user
from callcenter.web.contract import Endpoint, failed, ok, register
from callcenter.web.params import bad_request, json_error

CAMPAIGNS = web.AppKey("campaigns", CampaignRepository)
KNOWN_QUEUES = web.AppKey("campaign_queues", tuple)  # the configured queues, by name


def install_campaign_routes(app: web.Application, campaigns: CampaignRepository,
                            queues: tuple[str, ...]) -> None:
    app[CAMPAIGNS] = campaigns
    app[KNOWN_QUEUES] = queues
    register(app, ENDPOINTS)


def _check_queue(request: web.Request, queue: str | None) -> None:
    known = request.app[KNOWN_QUEUES]
    if queue is not None and queue not in known:
        raise bad_request(f"body: queue: {queue!r} is not a configured queue; use one of "
                          f"{', '.join(known)}")


async def list_campaigns(request: web.Request) -> web.Response:
    campaigns = await request.app[CAMPAIGNS].list()
    return CampaignList(campaigns=[CampaignAnswer.of(c) for c in campaigns]).response()


async def show_campaign(request: web.Request, path: CampaignPath) -> web.Response:
    with _errors():
        campaign = await request.app[CAMPAIGNS].get(path.name)
    return CampaignAnswer.of(campaign).response()


async def create_campaign(request: web.Request, body: NewCampaign) -> web.Response:
    _check_queue(request, body.queue)
    new = Campaign(name=body.name, created_by=current_user(request).username,
                   **body.settings())
    with _errors():
        created = await request.app[CAMPAIGNS].add(new)
    return CampaignAnswer.of(created).response(201)


async def change_campaign(request: web.Request, path: CampaignPath, body: CampaignChanges
                          ) -> web.Response:
    _check_queue(request, body.queue)
    with _errors():
        changed = await request.app[CAMPAIGNS].change(path.name, body.settings())
    return CampaignAnswer.of(changed).response()


async def change_state(request: web.Request, path: CampaignPath, body: StateRequest
                       ) -> web.Response:
    who = current_user(request).username
    reason = f"{who}: {body.reason}" if body.reason else who
    with _errors():
        changed = await request.app[CAMPAIGNS].set_state(
            path.name, CampaignState(body.state), reason)
    return CampaignAnswer.of(changed).response()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except CampaignNotFound as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except ValueError as exc:  # a taken name, a state that forbids it, a change made meanwhile
        raise json_error(web.HTTPConflict, str(exc)) from None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/campaigns", list_campaigns, CAMPAIGN_READERS,
             "Every outbound campaign, by name", "campaigns",
             {200: ok(CampaignList)}, takes_no_query=True),
    Endpoint("GET", "/api/campaigns/{name}", show_campaign, CAMPAIGN_READERS,
             "One campaign's settings and state", "campaigns",
             {200: ok(CampaignAnswer), 404: failed("No such campaign.")},
             path_args=CampaignPath, takes_no_query=True),
    Endpoint("POST", "/api/campaigns", create_campaign, CAMPAIGN_MANAGERS,
             "Create a campaign (state created: it dials nothing until started)",
             "campaigns",
             {201: ok(CampaignAnswer, "Created."), 409: failed("The name is taken.")},
             body=NewCampaign,
             body_example='{"name": "renewals", "mode": "predictive", "queue": "sales", '
                          '"caller_id": "+551130000000", "default_region": "BR", '
                          '"hours": {"mon-fri": ["09:00-20:00"], "sat": ["10:00-14:00"]}}',
             description="Calling hours apply in each callee's own time zone (from the "
                         "number), public holidays of the callee's country skipped unless "
                         "`skip_holidays` is false. The abandon cap is at most 3 %; the ring "
                         "time at least 15 s."),
    Endpoint("PATCH", "/api/campaigns/{name}", change_campaign, CAMPAIGN_MANAGERS,
             "Change a campaign's settings", "campaigns",
             {200: ok(CampaignAnswer, "Changed."), 404: failed("No such campaign."),
              409: failed("The campaign is running (pause it first) or stopped.")},
             path_args=CampaignPath, body=CampaignChanges,
             body_example='{"max_attempts": 5}'),
    Endpoint("POST", "/api/campaigns/{name}/state", change_state, CAMPAIGN_MANAGERS,
             "Start, pause or stop a campaign", "campaigns",
             {200: ok(CampaignAnswer, "Changed; the campaign as stored now."),
              404: failed("No such campaign."),
              409: failed("A change its state does not allow (already in that state, or "
                          "stopped for good).")},
             path_args=CampaignPath, body=StateRequest,
             body_example='{"state": "paused", "reason": "list to be checked"}',
             description="The reason is stored with the state, after the user's name."),
)
