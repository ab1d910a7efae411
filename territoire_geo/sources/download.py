"""Resumable, verified, atomic downloads of one URL to one file.

The bytes go to ``<target>.part``; an interrupted transfer resumes from the
bytes already there with ``Range`` (guarded by ``If-Range`` on the ETag);
the file is renamed to ``target`` only when complete and, where a checksum
is known, verified. A wrong checksum removes the partial file. Without a
checksum or size, a TIFF or JPEG 2000 whose own structure reaches past its
end (a server announcing a short ``Content-Length``) is a cut body: resumed.
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

import requests

from territoire_geo._atomic import commit, export_error, temp_path
from territoire_geo.checksums import file_digest, parse_multihash
from territoire_geo.errors import ChecksumError, DataError, ExportError, SourceError, SourceUnavailableError
from territoire_geo.sources._file_integrity import check_file
from territoire_geo.sources._http import HttpClient, redact_url

__all__ = ["DownloadResult", "download"]

log = logging.getLogger(__name__)
CHUNK = 1 << 14  # small enough that a cut loses little of what arrived

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class DownloadResult:
    """What one download did."""

    path: Path
    bytes_transferred: int
    cached: bool
    resumed: bool
    verified: str | None  # algorithm used, or None when no checksum was known


def download(url: str, target: Path, *, http: HttpClient, checksum: str | None = None,
             progress: Progress | None = None, max_resumes: int | None = None,
             size: int | None = None) -> DownloadResult:
    """Download ``url`` to ``target`` unless it is already there.

    Parameters
    ----------
    url
        ``http(s)://``, ``file://`` or a local path.
    target
        Final path; written atomically.
    checksum
        ``file:checksum`` multihash (hex) to verify against.
    size
        ``file:size`` in bytes, when the catalogue gives it: a file of another
        size is discarded (a server may announce a short ``Content-Length``).
        Without ``checksum`` and ``size``, a TIFF or JPEG 2000 body whose
        structure reaches past its end is resumed like a cut body.
    progress
        Called with (bytes just received, total bytes or None).

    Raises
    ------
    ChecksumError
        If the bytes do not match ``checksum`` or ``size``, or the server's own
        file is truncated (the partial file is removed).
    SourceUnavailableError
        If the body stays cut or truncated after ``max_resumes`` resumes (the
        partial file is kept for a later run), or as :class:`HttpClient` raises it.
    SourceError, AuthenticationError
        As :class:`HttpClient` raises them.
    ExportError
        If the disk is full or the target cannot be written.
    """
    target = Path(target)
    if target.exists() and _intact(target, checksum, size):
        return DownloadResult(target, 0, True, False, None)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = temp_path(target)  # kept between runs: the next one resumes it
    try:
        if url.startswith(("http://", "https://")):
            moved, resumed = _http_download(url, part, http, progress, max_resumes or http.policy.retries + 2,
                                            structure=checksum is None and size is None)
        else:
            moved, resumed = _copy_local(url, part), False
        _verify_size(part, size, url)
        verified = _verify(part, checksum, url)
        commit(part, target)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            part.unlink(missing_ok=True)
            _meta(part).unlink(missing_ok=True)
        if isinstance(exc, (SourceError, ExportError)):
            raise
        raise export_error(target, exc) from exc
    _meta(part).unlink(missing_ok=True)
    return DownloadResult(target, moved, False, resumed, verified)


def _intact(path: Path, checksum: str | None, size: int | None = None) -> bool:
    if size is not None and path.stat().st_size != size:
        return False
    if checksum is None:  # a file cached truncated before its structure was checked is fetched again
        return size is not None or check_file(path).complete is not False
    algorithm, expected = parse_multihash(checksum)
    return file_digest(path, algorithm) == expected


def _verify(part: Path, checksum: str | None, url: str) -> str | None:
    if checksum is None:
        return None
    algorithm, expected = parse_multihash(checksum)
    actual = file_digest(part, algorithm)
    if actual != expected:
        _discard(part, f"{redact_url(url)}: {algorithm} checksum mismatch (expected {expected[:12]}…, "
                       f"got {actual[:12]}…); the file was discarded, run again or report the corrupt asset")
    return algorithm


def _verify_size(part: Path, size: int | None, url: str) -> None:
    if size is None or part.stat().st_size == size:
        return
    actual = part.stat().st_size
    _discard(part, f"{redact_url(url)}: {actual} bytes received but the catalogue announces {size}; "
                   "the file was discarded, run again or report the asset")


def _truncation(part: Path, url: str, server_sent_all: bool) -> str:
    """Why a finished body is not a whole file: ``""`` when it is, or when its format cannot tell.

    ``server_sent_all``: the server confirmed its file ends where ours does
    (a ``Range`` probe) — resuming cannot help, so the file is discarded.
    """
    integrity = check_file(part)
    if integrity.complete is not False:
        return ""
    what = f"truncated {integrity.format.upper()}: {integrity.actual_bytes} bytes, {integrity.reason}"
    if server_sent_all:
        _discard(part, f"{redact_url(url)}: the server's file itself is a {what}; "
                       "the file was discarded, report the corrupt asset")
    return what


def _discard(part: Path, message: str) -> NoReturn:
    """Remove the partial file and its metadata, then raise :class:`ChecksumError` with ``message``."""
    part.unlink(missing_ok=True)
    _meta(part).unlink(missing_ok=True)
    raise ChecksumError(message)


def _copy_local(url: str, part: Path) -> int:
    source = Path(unquote(urlsplit(url).path)) if url.startswith("file://") else Path(url)
    if not source.is_file():
        raise DataError(f"asset {source} does not exist; check the catalog")
    shutil.copyfile(source, part)
    return part.stat().st_size


def _meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _http_download(url: str, part: Path, http: HttpClient, progress: Progress | None,
                   max_resumes: int, structure: bool = False) -> tuple[int, bool]:
    """Fetch into ``part``, resuming cut bodies; with ``structure``, truncated TIFF/JP2 bodies too.

    After a truncated structure the next request re-reads the last byte
    (``Range: bytes=<size - 1>-``): a ``206`` whose total is our size is the
    server saying its file ends there.
    """
    moved, resumed, failure, overlap = 0, False, "", 0
    for attempt in range(max_resumes + 1):
        have = part.stat().st_size if part.exists() else 0
        start = max(have - overlap, 0)
        headers = _resume_headers(part, start)
        with http.stream(url, headers=headers) as response:
            _refuse_html(response, url)
            offset = _start_offset(response, start)
            probed = overlap > 0 and offset == start > 0
            resumed = resumed or offset > 0
            total = _total_size(response, offset)
            if total is None or offset < total:
                _save_meta(part, response)
                try:
                    moved += _write_body(response, part, offset, progress, total)
                except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError,
                        requests.exceptions.ContentDecodingError, requests.Timeout) as exc:
                    failure, overlap = type(exc).__name__, 0
                    log.info("%s: transfer cut (%s); resuming (%d/%d)", redact_url(url), failure,
                             attempt + 1, max_resumes)
                    time.sleep(http.policy.delay(attempt, None))
                    continue
        size = part.stat().st_size if part.exists() else 0
        if total is not None and size < total:
            failure, overlap = f"body ended at {size} of {total} bytes", 0
        else:
            failure = _truncation(part, url, probed and total is not None) if structure else ""
            if not failure:
                return moved, resumed
            overlap = 1
            log.info("%s: %s; resuming (%d/%d)", redact_url(url), failure, attempt + 1, max_resumes)
        time.sleep(http.policy.delay(attempt, None))
    raise SourceUnavailableError(f"{redact_url(url)}: download kept failing ({failure}); "
                                 "run again to resume from the bytes already fetched")


def _refuse_html(response: requests.Response, url: str) -> None:
    ctype = response.headers.get("Content-Type", "")
    if "text/html" in ctype and not urlsplit(url).path.endswith((".html", ".htm")):
        raise SourceError(f"{redact_url(url)} answered an HTML page instead of the file (a login or error "
                          "page?); check the URL, credentials or signing")


def _resume_headers(part: Path, have: int) -> dict[str, str]:
    if have <= 0:
        return {}
    headers = {"Range": f"bytes={have}-"}
    meta = _meta(part)
    if meta.exists():
        etag = json.loads(meta.read_text()).get("etag")
        if etag:
            headers["If-Range"] = etag
    return headers


def _start_offset(response: requests.Response, have: int) -> int:
    if response.status_code == 206 and have:
        content_range = response.headers.get("Content-Range", "")
        try:
            start = int(content_range.split()[1].split("-")[0])
        except (IndexError, ValueError):
            start = -1
        if start == have:
            return have
    return 0


def _total_size(response: requests.Response, offset: int) -> int | None:
    if response.status_code == 206:
        try:
            return int(response.headers["Content-Range"].rsplit("/", 1)[1])
        except (KeyError, ValueError):
            return None
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def _save_meta(part: Path, response: requests.Response) -> None:
    etag = response.headers.get("ETag")
    if etag:
        _meta(part).write_text(json.dumps({"etag": etag}))


def _write_body(response: requests.Response, part: Path, offset: int, progress: Progress | None,
                total: int | None) -> int:
    moved = 0
    mode = "r+b" if offset and part.exists() else "wb"
    with part.open(mode) as out:
        out.seek(offset)
        out.truncate()
        for chunk in response.iter_content(CHUNK):
            out.write(chunk)
            moved += len(chunk)
            if progress:
                progress(len(chunk), total)
    return moved
