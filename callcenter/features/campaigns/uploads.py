"""Uploaded files (call lists, do-not-call lists, consents): the request body streamed to a
private temporary file, never held in memory, then handed to a background import.

Why the raw body and not a multipart form: the file is the body as it is (``curl
--data-binary @list.csv -H 'Content-Type: text/csv'``, or a page's ``fetch(url, {body:
file})``), so it streams straight to disk with no form parser in between, and what the
upload means (the list's name, the column mapping) travels in the query, checked before a
byte of the body is read. The web application reads every other body whole, capped at
64 KiB, within ``http_body_seconds`` (web/limits.py); an upload route is declared with
``stream_body`` and gets its own rules here:

- **Type**: the ``Content-Type`` names the format (``text/csv``; the XLSX type); anything
  else is a 415 naming the accepted ones. A body whose first bytes contradict it (a zip sent
  as CSV, text sent as XLSX) is a 400.
- **Size**: at most ``UploadLimits.max_bytes`` (setting ``service.upload_max_megabytes``):
  a larger ``Content-Length`` is refused before reading, a body that grows past it (chunked)
  as soon as it does; 413 either way.
- **Pace**: the first ``grace_seconds`` (``service.http_body_seconds``) are free; after that
  the bytes received must keep up with ``min_bytes_per_second`` on average, so a 200 MB file
  may take its time on a slow line (about 50 minutes at the floor) but a client trickling a
  byte now and then is cut off with a 408 as soon as it falls behind.
- **At once**: at most ``max_at_once`` uploads are received at the same time (each holds a
  connection and a file); one more is a 503 with ``Retry-After``.
- **Cut off**: a body that ends before its ``Content-Length`` (or a broken chunked body)
  keeps nothing.

The file lives in ``<data folder>/uploads`` (mode 700, files 600) only until its import
ends, whatever way it ends; ``remove_stale`` deletes what a killed process left (the service
calls it at start, when no upload can be in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from callcenter.private_files import private_folder
from callcenter.web.params import bad_request, json_error

log = logging.getLogger(__name__)

CSV_TYPE = "text/csv"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOAD_FOLDER = "uploads"
_PREFIX = "upload-"
_SUFFIX = ".part"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
F = TypeVar("F")


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 200 * 1024 * 1024
    grace_seconds: float = 30.0  # before the pace counts (the headers' body time)
    min_bytes_per_second: int = 64 * 1024  # on average, after the grace
    max_at_once: int = 4


@dataclass(frozen=True)
class StoredUpload(Generic[F]):
    """An upload safely on disk: its file, size and the format its type named."""

    path: Path
    size: int
    file_format: F

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class UploadFolder:
    def __init__(self, folder: Path, limits: UploadLimits | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.folder = private_folder(folder)
        self.limits = limits or UploadLimits()
        self._monotonic = monotonic
        self._receiving = 0

    def remove_stale(self) -> int:
        """Delete every upload file left here (by a process killed mid-upload or
        mid-import); call it before serving, when none can be in use. Returns how many."""
        removed = 0
        for path in self.folder.glob(f"{_PREFIX}*{_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        if removed:
            log.warning("removed %d upload file(s) an earlier run left in %s", removed,
                        self.folder)
        return removed

    def files(self) -> list[Path]:
        return sorted(self.folder.glob(f"{_PREFIX}*{_SUFFIX}"))

    async def receive(self, request: web.Request, formats: Mapping[str, F]) -> StoredUpload[F]:
        """The request's body on disk, or an HTTP error saying what is wrong (nothing kept).

        ``formats``: the accepted media types and the format each names."""
        media_type = request.content_type
        if media_type not in formats:
            sent = request.headers.get("Content-Type", "")[:60] or "none"
            raise json_error(
                web.HTTPUnsupportedMediaType,
                f"body: send the file with Content-Type {' or '.join(formats)}, not "
                f"{sent!r}")
        limits = self.limits
        declared = request.content_length
        if declared is not None and declared > limits.max_bytes:
            raise _too_large(limits.max_bytes)
        if not request.body_exists or declared == 0:
            raise bad_request("body: the file is empty")
        if self._receiving >= limits.max_at_once:
            raise json_error(web.HTTPServiceUnavailable,
                             f"{limits.max_at_once} uploads are being received already; try "
                             "again shortly")
        self._receiving += 1
        path = self.folder / f"{_PREFIX}{secrets.token_hex(12)}{_SUFFIX}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        kept = False
        try:
            size, head = await self._copy(request, descriptor)
            if size == 0:
                raise bad_request("body: the file is empty")
            file_format = formats[media_type]
            _check_head(head, media_type)
            kept = True
            return StoredUpload(path, size, file_format)
        finally:
            self._receiving -= 1
            os.close(descriptor)
            if not kept:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    async def _copy(self, request: web.Request, descriptor: int) -> tuple[int, bytes]:
        limits = self.limits
        started = self._monotonic()
        received = 0
        head = b""
        while True:
            # The pace rule: by now, everything past the grace must have come at the floor.
            due = started + limits.grace_seconds + received / limits.min_bytes_per_second
            try:
                async with asyncio.timeout(max(due - self._monotonic(), 0.0)):
                    chunk = await request.content.readany()
            except TimeoutError:
                elapsed = self._monotonic() - started
                response = json_error(
                    web.HTTPRequestTimeout,
                    f"body: the upload is too slow: {received} bytes in {elapsed:.0f} s; after "
                    f"the first {limits.grace_seconds:g} s it must arrive at "
                    f"{limits.min_bytes_per_second // 1024} KiB/s or more")
                response.force_close()
                raise response from None
            except (HttpProcessingError, ConnectionError) as exc:
                raise bad_request(f"body: the upload was cut off after {received} bytes "
                                  f"({type(exc).__name__}); send it again") from None
            if not chunk:
                break
            received += len(chunk)
            if received > limits.max_bytes:
                raise _too_large(limits.max_bytes)
            if len(head) < 8:
                head += chunk[:8]
            view = memoryview(chunk)
            while view:
                view = view[os.write(descriptor, view):]
        declared = request.content_length
        if declared is not None and received != declared:
            raise bad_request(f"body: the upload was cut off: {received} of {declared} bytes")
        return received, head


def _check_head(head: bytes, media_type: str) -> None:
    """The first bytes must not contradict the type the client named."""
    if media_type == XLSX_TYPE and not head.startswith(_ZIP_MAGIC):
        raise bad_request("body: this is not an XLSX file (an XLSX file is a zip archive); "
                          f"send a CSV file as {CSV_TYPE}")
    if media_type != XLSX_TYPE and head.startswith(_ZIP_MAGIC):
        raise bad_request(f"body: this is an XLSX (zip) file, not CSV; send it as {XLSX_TYPE}")
    if media_type != XLSX_TYPE and head.startswith(_OLE_MAGIC):
        raise bad_request("body: this is an old Excel (.xls) file, not CSV; save it as .xlsx "
                          "or as CSV UTF-8")


def _too_large(limit: int) -> web.HTTPError:
    message = (f"body: the file is larger than the {limit} bytes ({limit // 2**20} MiB) an "
               "upload may have; split it into several lists")
    error = web.HTTPRequestEntityTooLarge(
        limit, 0, text=json.dumps({"error": message, "status": 413, "limit_bytes": limit}),
        content_type="application/json")
    error.force_close()  # the rest of the body is not read: the connection cannot be reused
    return error
