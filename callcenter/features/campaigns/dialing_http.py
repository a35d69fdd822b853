"""Dialing: a campaign's attempts, an agent's disposition of a call, the live figures
(``ENDPOINTS`` at the end).

Campaign managers, supervisors and admins read the attempts and figures; the agent who took
a call sets its disposition (so may a supervisor, a campaign manager or an admin). Errors:
400 bad input (naming the field), 403 another agent's call, 404 unknown campaign or attempt,
409 a disposition set already.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from callcenter.features.accounts.store import Role
from callcenter.features.campaigns.dialer import CampaignDialer, PreviewRefused
from callcenter.features.campaigns.dialing_schemas import (
    AttemptAnswer,
    AttemptList,
    AttemptPath,
    AttemptsQuery,
    CampaignFigures,
    DispositionBody,
    ExtraField,
    PreviewAnswer,
    PreviewBody,
    PreviewChoice,
    PreviewChosen,
    PreviewPath,
)
from callcenter.features.campaigns.dispositions import (
    AlreadyDisposed,
    AttemptNotFound,
    DispositionRefused,
    Dispositions,
    NotYourCall,
)
from callcenter.features.campaigns.schemas import CampaignPath
from callcenter.features.campaigns.store import CampaignNotFound
from callcenter.web.auth import CAMPAIGN_READERS, FLOOR, current_user, require_own_agent
from callcenter.web.contract import Endpoint, failed, ok, register
from callcenter.web.params import bad_request, json_error

DIALER = web.AppKey("campaign_dialer", CampaignDialer)
DISPOSITIONS = web.AppKey("dispositions", Dispositions)
# Who may set a disposition: the agent who took the call, and the people over the campaign.
DISPOSERS = (Role.ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPERVISOR, Role.AGENT)


def install_dialing_routes(app: web.Application, dialer: CampaignDialer,
                           dispositions: Dispositions) -> None:
    app[DIALER] = dialer
    app[DISPOSITIONS] = dispositions
    register(app, ENDPOINTS)


async def show_figures(request: web.Request, path: CampaignPath) -> web.Response:
    with _errors():
        figures = await request.app[DIALER].figures(path.name)
    return CampaignFigures(campaign=path.name, **figures).response()


async def list_attempts(request: web.Request, path: CampaignPath, query: AttemptsQuery
                        ) -> web.Response:
    with _errors():
        attempts = await request.app[DIALER].attempts(path.name, query.limit)
    return AttemptList(campaign=path.name,
                       attempts=[AttemptAnswer.of(a) for a in attempts]).response()


async def set_disposition(request: web.Request, path: AttemptPath, body: DispositionBody
                          ) -> web.Response:
    user = current_user(request)
    over_the_campaign = user.has_any({Role.ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPERVISOR})
    with _errors():
        attempt = await request.app[DISPOSITIONS].set(
            path.name, path.attempt_id, body.request(), by=user.username,
            agent_id=user.agent_id, for_any_call=over_the_campaign)
    return AttemptAnswer.of(attempt).response()


async def preview(request: web.Request, path: CampaignPath, body: PreviewBody
                  ) -> web.Response:
    require_own_agent(request, body.agent_id)
    with _errors():
        entry = await request.app[DIALER].preview(path.name, body.agent_id)
        campaign = await request.app[DIALER].campaign(path.name)
    return PreviewAnswer(
        campaign=path.name, entry_id=entry.entry_id, number=entry.number, name=entry.name,
        time_zones=list(entry.time_zones),
        extra=[ExtraField(column=column, value=value) for column, value in entry.extra],
        calls_made=entry.calls_made, script=campaign.script).response()


async def preview_choice(request: web.Request, path: PreviewPath, body: PreviewChoice
                         ) -> web.Response:
    require_own_agent(request, body.agent_id)
    with _errors():
        placed = await request.app[DIALER].preview_choice(
            path.name, body.agent_id, path.entry_id, dial=body.action == "dial")
    return PreviewChosen(dialled=placed is not None,
                         attempt_id=placed.id if placed else None).response()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (CampaignNotFound, AttemptNotFound) as exc:
        raise json_error(web.HTTPNotFound, str(exc)) from None
    except NotYourCall as exc:
        raise json_error(web.HTTPForbidden, str(exc)) from None
    except (AlreadyDisposed, PreviewRefused) as exc:
        raise json_error(web.HTTPConflict, str(exc)) from None
    except DispositionRefused as exc:
        raise bad_request(f"body: {exc}") from None


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/campaigns/{name}/figures", show_figures, CAMPAIGN_READERS,
             "A campaign's live figures", "campaigns",
             {200: ok(CampaignFigures), 404: failed("No such campaign.")},
             path_args=CampaignPath, takes_no_query=True,
             description="Today's attempts by outcome, the abandon rate today and over 30 "
                         "days against the cap, calls in flight, the dial level, the queue's "
                         "agents by state, contacts per hour, the list's penetration and the "
                         "time to finish it. The same figures (without the list's) go out "
                         "on the event stream as `campaign` events every 5 seconds."),
    Endpoint("GET", "/api/campaigns/{name}/attempts", list_attempts, CAMPAIGN_READERS,
             "A campaign's calls, newest first", "campaigns",
             {200: ok(AttemptList), 404: failed("No such campaign.")},
             path_args=CampaignPath, query=AttemptsQuery),
    Endpoint("POST", "/api/campaigns/{name}/preview", preview, FLOOR,
             "Preview mode: the number an agent may dial next", "campaigns",
             {200: ok(PreviewAnswer), 403: failed("Another agent's preview."),
              404: failed("No such campaign."),
              409: failed("Not a running preview campaign, not the agent's queue, or no "
                          "number may be called now.")},
             path_args=CampaignPath, body=PreviewBody, body_example='{"agent_id": "agent1"}',
             own_only=(Role.AGENT,),
             description="The entry is held for this agent (asking again gives the same one) "
                         "until they dial or skip it. Its do-not-call, consent and hours are "
                         "checked again when they dial."),
    Endpoint("POST", "/api/campaigns/{name}/preview/{entry_id}", preview_choice, FLOOR,
             "Preview mode: dial or skip the previewed number", "campaigns",
             {200: ok(PreviewChosen), 403: failed("Another agent's preview."),
              404: failed("No such campaign."),
              409: failed("Not the entry the agent previews, the agent is not ready, or the "
                          "number may no longer be called.")},
             path_args=PreviewPath, body=PreviewChoice,
             body_example='{"agent_id": "agent1", "action": "dial"}', own_only=(Role.AGENT,),
             description="Dial: the call is placed now and its answer goes to this agent "
                         "(within the 2-second rule, like every answer). Skip: the number "
                         "stays on the list for later."),
    Endpoint("POST", "/api/campaigns/{name}/attempts/{attempt_id}/disposition",
             set_disposition, DISPOSERS,
             "Set the disposition of a call (the agent who took it)", "campaigns",
             {200: ok(AttemptAnswer, "Stored; the attempt as stored now."),
              403: failed("Another agent's call."),
              404: failed("No such campaign or attempt."),
              409: failed("The call has its disposition already.")},
             path_args=AttemptPath, body=DispositionBody,
             body_example='{"disposition": "call_back", "notes": "asked for the morning", '
                          '"call_back_at": "2026-12-08T10:30", "personal": true}',
             own_only=(Role.AGENT,),
             description="A `do_not_call` disposition lists the number on the campaign's "
                         "do-not-call list and revokes its consent at once. `call_back_at` "
                         "(retry dispositions) is a wall-clock time in the callee's zone; it "
                         "still waits for the calling hours. Agents may also dial *55N on "
                         "their phone for the campaign's Nth disposition on their latest "
                         "call."),
)
