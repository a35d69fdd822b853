"""HTTP data dips for IVR flows: GET a JSON object with the caller's collected values.

The URL comes from the flow file (written by an admin, checked at load: http or https);
the query values come from the call. Every failure — refused connection, timeout, a status
other than 200, a body that is not a JSON object, a body over the size limit — becomes an
error text the flow's ``on_failure`` branch acts on; nothing here raises into the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

import aiohttp

log = logging.getLogger(__name__)

MAX_REPLY_BYTES = 64 * 1024
RETRY_PAUSE_SECONDS = 0.2


class DataDips:
    """One HTTP client for all calls' dips (connection reuse), closed with the service."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, url: str, params: Mapping[str, str], *, timeout: float,
                    retries: int) -> tuple[dict[str, object] | None, str | None]:
        """(the reply object, None) or (None, why it failed) after 1 + ``retries`` tries."""
        error = "not tried"
        for attempt in range(1 + retries):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
            reply, error = await self._try(url, params, timeout)
            if reply is not None:
                return reply, None
        log.warning("data dip %s failed after %d tries: %s", url, 1 + retries, error)
        return None, error

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _try(self, url: str, params: Mapping[str, str],
                   timeout: float) -> tuple[dict[str, object] | None, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Accept": "application/json"})
        try:
            async with self._session.get(
                url, params=dict(params), allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                if response.status != 200:
                    return None, f"HTTP {response.status}"
                body = await response.content.read(MAX_REPLY_BYTES + 1)
        except TimeoutError:
            return None, f"no answer within {timeout:g} s"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        if len(body) > MAX_REPLY_BYTES:
            return None, f"reply larger than {MAX_REPLY_BYTES} bytes"
        try:
            reply = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return None, f"reply is not JSON: {exc}"
        if not isinstance(reply, dict):
            return None, "reply is not a JSON object"
        return reply, ""
