"""Endpoint grammar: parse ``scheme://host:port/path`` and format it back.

Validators publish over HTTP and WebSocket; every address the async layer takes goes through
:func:`parse_endpoint` or :func:`format_url`, so a malformed one fails early with
:class:`EndpointError`. Endpoints are a small grammar parsed by hand, not with
``urllib.parse.urlparse`` (see ``docs/design/aio-endpoints.md``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from .._validation import check_int
from ..errors import DTypeError, ValueRangeError

__all__ = ["EndpointError", "Endpoint", "DEFAULT_PORTS", "parse_endpoint", "format_url"]


class EndpointError(ValueRangeError):
    """An endpoint, URL, host or port argument is malformed or out of range."""


#: Default port of each scheme an endpoint may use.
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_BAD_CHARS_RE = re.compile(r"[\s\x00-\x1f\x7f]")


class Endpoint(NamedTuple):
    """A parsed endpoint.

    Attributes:
        scheme: ``"http"``, ``"https"``, ``"ws"`` or ``"wss"`` (lower case).
        host: a DNS name (lower case), an IPv4 address, or an IPv6 address *without* brackets.
        port: 1..65535; the scheme's default when the text named none.
        path: everything after the host and port, query included (``""`` when none).
    """

    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        """The endpoint as a URL; the port is left out when it is the scheme's default.

        Example:
            >>> parse_endpoint("[::1]:8080/v1").url
            'http://[::1]:8080/v1'
        """
        port = None if DEFAULT_PORTS[self.scheme] == self.port else self.port
        return format_url(self.host, port, self.scheme, self.path)


def check_port(port: object, name: str = "port") -> int:
    """``port`` as an int in 1..65535 (never ``OverflowError``).

    Raises:
        DTypeError: ``port`` is not an int (bool is not).
        EndpointError: ``port`` is outside 1..65535.
    """
    try:
        return check_int(port, name, low=1, high=65535)
    except ValueRangeError as exc:
        raise EndpointError(str(exc)) from None


def _check_scheme(scheme: object, text: object) -> str:
    if not isinstance(scheme, str) or not _SCHEME_RE.fullmatch(scheme):
        raise EndpointError(f"malformed scheme {scheme!r} in {text!r}")
    lowered = scheme.lower()
    if lowered not in DEFAULT_PORTS:
        raise EndpointError(
            f"unknown scheme {scheme!r} in {text!r}; expected one of {', '.join(DEFAULT_PORTS)}"
        )
    return lowered


def _normalize_host(host: str, text: object) -> str:
    """A validated host: canonical IPv6 (no brackets), IPv4, or a lower-case DNS name."""
    if not host:
        raise EndpointError(f"empty host in {text!r}")
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise EndpointError(f"unbalanced brackets around host in {text!r}")
        host = host[1:-1]
        if not host:
            raise EndpointError(f"empty host in {text!r}")
        return _ipv6(host, text)
    if ":" in host:
        return _ipv6(host, text)
    if re.fullmatch(r"[0-9.]+", host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise EndpointError(f"host {host!r} in {text!r} is not a valid IPv4 address") from None
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise EndpointError(f"host {host!r} in {text!r} is not a valid DNS name") from None
    name = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    if len(name) > 253 or not all(_LABEL_RE.fullmatch(label) for label in name.split(".")):
        raise EndpointError(f"host {host!r} in {text!r} is not a valid DNS name")
    return ascii_host


def _ipv6(host: str, text: object) -> str:
    try:
        return str(ipaddress.IPv6Address(host.replace("%25", "%", 1)))
    except ValueError:
        raise EndpointError(f"host {host!r} in {text!r} is not a valid IPv6 address") from None


def parse_endpoint(url: str) -> Endpoint:
    """Parse ``scheme://host:port/path`` into an :class:`Endpoint`.

    * No ``://`` means ``http``: ``"node.example.com"`` is that host on port 80 and
      ``"localhost:8080"`` is ``localhost`` on port 8080 (the original turned the first into
      ``localhost`` and read ``localhost`` in the second as a scheme).
    * The port defaults to the scheme's (:data:`DEFAULT_PORTS`: ``wss`` is 443, not 80).
    * IPv6 hosts need brackets (``[::1]:8080``); :attr:`Endpoint.host` holds them without.

    Args:
        url: the endpoint text; surrounding whitespace is ignored.

    Returns:
        The :class:`Endpoint` (scheme, host, port, path).

    Raises:
        EndpointError: garbage, an unknown scheme, an empty or invalid host, a port that is not a
            number in 1..65535 (0 included), credentials (``user@host``), or whitespace inside.
        DTypeError: ``url`` is not a ``str``.

    Example:
        >>> parse_endpoint("node.example.com")
        Endpoint(scheme='http', host='node.example.com', port=80, path='')
        >>> parse_endpoint("localhost:8080")
        Endpoint(scheme='http', host='localhost', port=8080, path='')
        >>> parse_endpoint("wss://[::1]/feed?x=1")
        Endpoint(scheme='wss', host='::1', port=443, path='/feed?x=1')
    """
    if not isinstance(url, str):
        raise DTypeError(f"`url` must be a str, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise EndpointError(f"empty endpoint {url!r}")
    if _BAD_CHARS_RE.search(text):
        raise EndpointError(f"whitespace or control character inside endpoint {url!r}")
    scheme_text, sep, rest = text.partition("://")
    if sep:
        scheme = _check_scheme(scheme_text, url)
    else:
        scheme, rest = "http", text
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:]
    host_text, port_text = _split_authority(authority, url)
    host = _normalize_host(host_text, url)
    port = DEFAULT_PORTS[scheme] if port_text is None else _read_port(port_text, url)
    return Endpoint(scheme, host, port, path)


def _split_authority(authority: str, url: str) -> tuple[str, str | None]:
    """``host[:port]`` as ``(host text, port text or None)``; a bracketed host keeps its brackets."""
    if "@" in authority:
        raise EndpointError(f"credentials ('user@host') are not supported in endpoint {url!r}")
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise EndpointError(f"unclosed '[' in endpoint {url!r}")
        host_text, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise EndpointError(f"unexpected {after!r} after ']' in endpoint {url!r}")
        return host_text, after[1:] if after else None
    if authority.count(":") > 1:
        raise EndpointError(f"IPv6 hosts need brackets, as in 'http://[::1]:8080', got {url!r}")
    host_text, colon, port_text = authority.partition(":")
    return host_text, port_text if colon else None


def _read_port(port_text: str, url: str) -> int:
    if not port_text.isascii() or not port_text.isdigit():
        raise EndpointError(f"port {port_text!r} in {url!r} is not a number in 1..65535")
    return check_port(int(port_text))


def format_url(host: str, port: int | None = None, scheme: str = "http", path: str = "") -> str:
    """Build a URL from parts; an IPv6 host is put in brackets.

    Args:
        host: a DNS name, an IPv4 address, or an IPv6 address (with or without brackets).
        port: 1..65535, or ``None`` to leave the port out (the scheme's default applies).
        scheme: ``"http"``, ``"https"``, ``"ws"`` or ``"wss"``.
        path: appended as is; a leading ``/`` is added when it starts with neither ``/`` nor ``?``.

    Returns:
        ``"{scheme}://{host}[:{port}]{path}"``.

    Raises:
        EndpointError: an unknown scheme, an empty or invalid host, a port out of range.

    Example:
        >>> format_url("::1", 8080)
        'http://[::1]:8080'
        >>> format_url("node.example.com", scheme="wss", path="feed")
        'wss://node.example.com/feed'
    """
    scheme = _check_scheme(scheme, scheme)
    if not isinstance(host, str):
        raise DTypeError(f"`host` must be a str, got {type(host).__name__}")
    canonical = _normalize_host(host.strip(), host)
    # A zone id's "%" is written "%25" inside brackets (RFC 6874); parse_endpoint reads it back.
    netloc = f"[{canonical.replace('%', '%25')}]" if ":" in canonical else canonical
    if port is not None:
        netloc = f"{netloc}:{check_port(port)}"
    if not isinstance(path, str):
        raise DTypeError(f"`path` must be a str, got {type(path).__name__}")
    if _BAD_CHARS_RE.search(path):
        raise EndpointError(f"whitespace or control character in path {path!r}")
    if path and path[0] not in "/?":
        path = "/" + path
    return f"{scheme}://{netloc}{path}"
