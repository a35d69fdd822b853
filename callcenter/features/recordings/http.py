"""/api/recordings: recorded calls, their audio, deletion and on-demand starts.

Audio is served by the recording's database id only: the handler reads the file name from
the row (written by the service, from the call's id) and checks it lies in the recordings
folder; nothing in the URL becomes part of a path. Only supervisors and admins list, hear
and delete recordings; agents never (they may start the recording of their own call on an
on-demand policy, and no more).
"""

from __future__ import annotations

from aiohttp import web

from callcenter.asterisk.ami import AmiError
from callcenter.features.accounts.store import Role
from callcenter.features.recordings.schemas import (
    RecordingAnswer,
    RecordingList,
    RecordingPath,
    RecordingQuery,
    RecordingRequest,
)
from callcenter.features.recordings.service import CallRecordings, RecordingRefused
from callcenter.features.recordings.store import RecordingNotFound, RecordingStore
from callcenter.web.auth import FLOOR, STAFF, current_user
from callcenter.web.contract import Endpoint, Reply, failed, ok, register
from callcenter.web.params import json_error

RECORDINGS = web.AppKey("recordings", CallRecordings)
RECORDING_STORE = web.AppKey("recording_store", RecordingStore)
AUDIO_TYPE = "audio/wav"


def install_recording_routes(app: web.Application, service: CallRecordings,
                             store: RecordingStore) -> None:
    app[RECORDINGS] = service
    app[RECORDING_STORE] = store
    register(app, ENDPOINTS)


def _not_found(recording_id: int | str) -> web.HTTPError:
    return json_error(web.HTTPNotFound, f"recording {str(recording_id)[:40]}: no such "
                                        "recording, or it has no audio (deleted)")


async def list_recordings(request: web.Request, query: RecordingQuery) -> web.Response:
    rows = await request.app[RECORDING_STORE].listing(
        since=query.since, until=query.until, agent_id=query.agent, queue=query.queue,
        with_audio=query.with_audio, limit=query.limit, offset=query.offset)
    return RecordingList(recordings=[RecordingAnswer.of(r) for r in rows]).response()


async def get_recording(request: web.Request, path: RecordingPath) -> web.Response:
    try:
        recording = await request.app[RECORDING_STORE].get(path.id)
    except RecordingNotFound:
        raise _not_found(path.id) from None
    return RecordingAnswer.of(recording).response()


async def recording_audio(request: web.Request, path: RecordingPath) -> web.StreamResponse:
    try:
        recording = await request.app[RECORDING_STORE].get(path.id)
        file = request.app[RECORDINGS].audio_path(recording)
    except RecordingNotFound:
        raise _not_found(path.id) from None
    # FileResponse answers Range requests (206 with Content-Range) for seeking.
    return web.FileResponse(file, headers={
        "Content-Type": AUDIO_TYPE,
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="recording-{recording.id}.wav"',
    })


async def delete_recording(request: web.Request, path: RecordingPath) -> web.Response:
    try:
        recording = await request.app[RECORDINGS].delete(path.id, current_user(request).username)
    except RecordingNotFound:
        raise _not_found(path.id) from None
    return RecordingAnswer.of(recording).response()


async def request_recording(request: web.Request, body: RecordingRequest) -> web.Response:
    user = current_user(request)
    try:
        recording = await request.app[RECORDING_STORE].by_call(body.call_id)
    except RecordingNotFound:
        raise json_error(web.HTTPNotFound, f"call_id: call {body.call_id!r} has no recording "
                                           "policy") from None
    if not user.has_any({Role.ADMIN, Role.SUPERVISOR}) and (
            user.agent_id is None or recording.agent_id != user.agent_id):
        raise json_error(web.HTTPForbidden, f"call_id: call {body.call_id!r} is not yours")
    try:
        recording = await request.app[RECORDINGS].request(body.call_id, user.username)
    except RecordingNotFound:
        raise json_error(web.HTTPNotFound, f"call_id: call {body.call_id!r} is not on "
                                           "now") from None
    except RecordingRefused as exc:
        raise json_error(web.HTTPConflict, f"call_id: {exc}") from None
    except AmiError as exc:
        raise json_error(web.HTTPServiceUnavailable, f"Asterisk cannot be reached: {exc}") \
            from None
    return RecordingAnswer.of(recording).response()


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/recordings", list_recordings, STAFF,
             "Recorded calls, newest first", "recordings", {200: ok(RecordingList)},
             query=RecordingQuery,
             description="One row per call a recording policy covered (also calls not "
                         "sampled, or whose on-demand recording was never asked for: "
                         "`status` no_audio). Filtered by when the policy decided."),
    Endpoint("GET", "/api/recordings/{id}", get_recording, STAFF,
             "One recorded call", "recordings",
             {200: ok(RecordingAnswer), 404: failed("No such recording.")},
             path_args=RecordingPath),
    Endpoint("GET", "/api/recordings/{id}/audio", recording_audio, STAFF,
             "A recording's audio (WAV); Range requests allowed for seeking", "recordings",
             {200: Reply("The whole file", {"type": "string", "format": "binary"},
                         media_type=AUDIO_TYPE),
              206: Reply("The byte range asked for", {"type": "string", "format": "binary"},
                         media_type=AUDIO_TYPE),
              404: failed("No such recording, no audio, or deleted."),
              416: Reply("The range lies outside the file", None)},
             path_args=RecordingPath),
    Endpoint("DELETE", "/api/recordings/{id}", delete_recording, STAFF,
             "Delete one recording's audio (the row stays, saying who and when)",
             "recordings",
             {200: ok(RecordingAnswer), 404: failed("No such recording, or deleted before.")},
             path_args=RecordingPath),
    Endpoint("POST", "/api/recordings/requests", request_recording, FLOOR,
             "Start recording a call on an on-demand policy", "recordings",
             {200: ok(RecordingAnswer), 403: failed("An agent asking for another's call."),
              404: failed("The call is not on now, or has no recording policy."),
              409: failed("The call's policy is not on demand, or no agent is on it yet."),
              503: failed("Asterisk cannot be reached.")},
             body=RecordingRequest, body_example='{"call_id": "1765143000.42"}', body_where="",
             own_only=(Role.AGENT,),
             description="The recorder was armed muted when the agent was connected; this "
                         "unmutes it. The file holds silence before this moment. An agent "
                         "may ask only for a call they took; asking twice is harmless."),
)
