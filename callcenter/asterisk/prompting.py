"""Playing our own prompts over AGI, and hanging up a caller who may be gone already: the
one way every feature does each."""

from __future__ import annotations

import logging

from callcenter.asterisk.agi import AgiCommandError
from callcenter.asterisk.agi_server import AgiSession

log = logging.getLogger(__name__)

PROMPT_FOLDER = "callcenter"  # Asterisk plays ours as callcenter/<name>


async def play(session: AgiSession, prompt: str, escape_digits: str = "") -> str | None:
    """Play one of our prompts; a prompt Asterisk cannot play is logged and skipped.

    A missing or broken sound file must not cost the caller their call: they lose one
    sentence, the admin gets an error line naming the file and the channel.
    """
    try:
        return await session.stream_file(f"{PROMPT_FOLDER}/{prompt}", escape_digits)
    except AgiCommandError as exc:
        log.error("call %s (%s): prompt %s/%s could not be played, skipped: %s",
                  session.env.uniqueid, session.env.channel, PROMPT_FOLDER, prompt, exc)
        return None


async def hang_up_quietly(session: AgiSession) -> None:
    """Hang the caller up unless they are gone; a caller who left meanwhile is no error."""
    if session.hung_up:
        return
    try:
        await session.hangup()
    except Exception:  # already gone: nothing left to do for this call
        log.debug("hangup of %s failed", session.env.channel, exc_info=True)
