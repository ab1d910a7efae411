"""The one HTTP client of territoire_geo: retries, back-off, error translation.

Transient failures (connection errors, timeouts, cut bodies, HTTP 429 and
5xx) are retried with exponential back-off, honouring ``Retry-After``, a
bounded number of times and within a bounded total time. 401/403 become
:class:`~territoire_geo.errors.AuthenticationError`, 404 and other 4xx a
:class:`~territoire_geo.errors.SourceError`, all without retry. Every
message names the URL with its secrets (``sig=``, ``token=``, userinfo)
redacted, and says what to do. Request headers are never logged.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from territoire_geo.config import Settings
from territoire_geo.errors import AuthenticationError, SourceError, SourceUnavailableError

__all__ = ["HttpClient", "RetryPolicy", "redact_url"]

log = logging.getLogger(__name__)

_SECRET_KEYS = frozenset({
    "sig", "signature", "key", "apikey", "api_key", "code", "se", "st", "sp", "sv", "sr",
    "skoid", "sktid", "skt", "ske", "sks", "skv",
})
_SECRET_PARTS = re.compile(r"token|secret|password|passwd|signature|credential", re.IGNORECASE)
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "territoire_geo (+https://github.com/territoire-geo)"


def redact_url(url: str) -> str:
    """The URL with userinfo and secret-looking query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username or parts.password:
        netloc = "***@" + netloc
    query = [(k, "***" if k.lower() in _SECRET_KEYS or _SECRET_PARTS.search(k) else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*"), ""))


class RetryPolicy:
    """How often and how long to retry transient failures."""

    def __init__(self, retries: int = 4, backoff: float = 0.5, max_delay: float = 30.0,
                 max_total: float = 120.0) -> None:
        self.retries, self.backoff, self.max_delay, self.max_total = retries, backoff, max_delay, max_total

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """Policy built from :class:`~territoire_geo.config.Settings`."""
        return cls(settings.http_retries, settings.http_backoff)

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (0-based)."""
        if retry_after:
            try:
                return min(float(retry_after), self.max_delay)
            except ValueError:
                pass
        base = self.backoff * (2**attempt)
        return min(base * (0.75 + 0.5 * random.random()), self.max_delay)


class HttpClient:
    """A requests session with the retry and error policy of the package.

    Parameters
    ----------
    settings
        Timeout and retry settings.
    headers
        Extra headers sent with every request (never logged).
    """

    def __init__(self, settings: Settings | None = None, *, headers: Mapping[str, str] | None = None,
                 policy: RetryPolicy | None = None) -> None:
        self.settings = settings or Settings()
        self.policy = policy or RetryPolicy.from_settings(self.settings)
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers.update(headers or {})

    def request(self, method: str, url: str, *, on_attempt: Callable[[int], None] | None = None,
                accept: Collection[int] = (), **kwargs: Any) -> requests.Response:
        """Send a request, retrying transient failures.

        Returns the response of the first attempt that is not transient. The
        caller closes streamed responses. A status in ``accept`` (e.g. ``{404}``
        where "not found" is an answer) is returned instead of raised.

        Raises
        ------
        AuthenticationError
            On 401 or 403.
        SourceUnavailableError
            When transient failures outlast the policy.
        SourceError
            On other 4xx answers.
        """
        kwargs.setdefault("timeout", self.settings.http_timeout)
        start = time.monotonic()
        for attempt in range(self.policy.retries + 1):
            if on_attempt:
                on_attempt(attempt)
            failure, retry_after, response = self._attempt(method, url, kwargs, accept)
            if failure is None and response is not None:
                return response
            if attempt == self.policy.retries or time.monotonic() - start > self.policy.max_total:
                break
            wait = self.policy.delay(attempt, retry_after)
            log.info("%s %s: %s; retry %d/%d in %.1f s", method, redact_url(url), failure, attempt + 1,
                     self.policy.retries, wait)
            time.sleep(wait)
        raise SourceUnavailableError(
            f"{method} {redact_url(url)} failed after {attempt + 1} attempts ({failure}); "
            "the server is unavailable or overloaded, try again later"
        )

    def _attempt(self, method: str, url: str, kwargs: dict[str, Any], accept: Collection[int] = ()
                 ) -> tuple[str | None, str | None, requests.Response | None]:
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.exceptions.InvalidURL as exc:
            raise SourceError(f"invalid URL {redact_url(url)}; check the address") from exc
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:  # a body cut mid-way is transient too
            return _short(exc), None, None
        if response.status_code in accept:
            return None, None, response
        if response.status_code in TRANSIENT_STATUS:
            response.close()
            return f"HTTP {response.status_code}", response.headers.get("Retry-After"), None
        if response.status_code in (401, 403):
            response.close()
            raise AuthenticationError(
                f"{method} {redact_url(url)} was refused (HTTP {response.status_code}); "
                "check your credentials or that the URL is signed and not expired"
            )
        if response.status_code >= 400:
            response.close()
            raise SourceError(
                f"{method} {redact_url(url)} answered HTTP {response.status_code}"
                f"{' (not found)' if response.status_code == 404 else ''}; check the URL and the item"
            )
        return None, None, response

    def get_json(self, url: str, *, method: str = "GET", **kwargs: Any) -> Any:
        """Request a JSON document; an HTML or malformed answer is a :class:`SourceError`."""
        response = self.request(method, url, **kwargs)
        return parse_json(response, url)

    @contextmanager
    def stream(self, url: str, **kwargs: Any) -> Iterator[requests.Response]:
        """A streamed GET whose connection is closed on exit."""
        response = self.request("GET", url, stream=True, **kwargs)
        try:
            yield response
        finally:
            response.close()


def parse_json(response: requests.Response, url: str) -> Any:
    """Decode a JSON body or raise a one-line :class:`SourceError`."""
    ctype = response.headers.get("Content-Type", "")
    text = response.text
    try:
        return json.loads(text)
    except ValueError as exc:
        kind = "HTML" if "html" in ctype or text.lstrip().startswith("<") else "something that is not JSON"
        raise SourceError(
            f"{redact_url(url)} answered {kind} instead of JSON; check that the URL is a STAC API or hub"
        ) from exc


def _short(exc: BaseException) -> str:
    text = type(exc).__name__
    reason = str(exc).split("\n")[0]
    if "Connection refused" in reason:
        return f"{text}: connection refused"
    if "timed out" in reason.lower():
        return f"{text}: timed out"
    return text
