"""parse_endpoint / format_url: hosts, ports, schemes, paths, errors, round trips."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

import mdt_tensor as mt
from mdt_tensor.errors import DTypeError, ValueRangeError
from mdt_tensor.aio.endpoints import DEFAULT_PORTS, Endpoint, EndpointError

E = Endpoint


def test_defect13_scheme_less_host_is_that_host_not_localhost() -> None:
    assert mt.parse_endpoint("node.example.com") == E("http", "node.example.com", 80, "")


def test_defect13_host_colon_port_is_not_read_as_a_scheme() -> None:
    assert mt.parse_endpoint("localhost:8080") == E("http", "localhost", 8080, "")
    assert mt.parse_endpoint("10.0.0.5:9944/rpc") == E("http", "10.0.0.5", 9944, "/rpc")


def test_defect13_wss_defaults_to_443() -> None:
    assert mt.parse_endpoint("wss://node.example.com").port == 443
    assert mt.parse_endpoint("ws://node.example.com").port == 80
    assert DEFAULT_PORTS == {"http": 80, "https": 443, "ws": 80, "wss": 443}


@pytest.mark.parametrize("text, expected", [
    ("http://example.com", E("http", "example.com", 80, "")),
    ("https://example.com", E("https", "example.com", 443, "")),
    ("HTTPS://Example.COM:8443/Path?q=1", E("https", "example.com", 8443, "/Path?q=1")),
    ("http://127.0.0.1:9944/", E("http", "127.0.0.1", 9944, "/")),
    ("http://[::1]:8080/health", E("http", "::1", 8080, "/health")),
    ("[::1]:8080", E("http", "::1", 8080, "")),
    ("[2001:DB8::1]", E("http", "2001:db8::1", 80, "")),
    ("ws://[fe80::1%25eth0]:9000", E("ws", "fe80::1%eth0", 9000, "")),
    ("  node-1.subnet_a.local:65535  ", E("http", "node-1.subnet_a.local", 65535, "")),
    ("example.com?x=1", E("http", "example.com", 80, "?x=1")),
    ("example.com.:1", E("http", "example.com.", 1, "")),
    ("http://bücher.example", E("http", "xn--bcher-kva.example", 80, "")),
])
def test_parse_valid(text: str, expected: Endpoint) -> None:
    assert mt.parse_endpoint(text) == expected


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("   ", "empty"),
    ("http://", "empty host"),
    ("http://:8080", "empty host"),
    (":8080", "empty host"),
    ("http://[]:80", "empty host"),
    ("ftp://example.com", "unknown scheme"),
    ("1http://example.com", "malformed scheme"),
    ("://example.com", "malformed scheme"),
    ("http://example.com:0", "1..65535"),
    ("http://example.com:65536", "1..65535"),
    ("example.com:99999", "1..65535"),
    ("example.com:-1", "not a number"),
    ("example.com:", "not a number"),
    ("example.com:http", "not a number"),
    ("example.com:８０", "not a number"),
    ("::1", "brackets"),
    ("http://::1:8080/", "brackets"),
    ("http://[::1", "unclosed"),
    ("http://[::1]8080", "after ']'"),
    ("http://[not-v6]:80", "IPv6"),
    ("http://999.1.1.1/", "IPv4"),
    ("8080", "IPv4"),
    ("http://-bad-.com", "DNS name"),
    ("http://a..b", "DNS name"),
    ("http://user:pw@example.com", "credentials"),
    ("http://exa mple.com", "whitespace"),
    ("http://example.com/a\nb", "whitespace"),
    ("http://" + "a" * 64 + ".com", "DNS name"),
])
def test_parse_garbage_raises_a_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(EndpointError, match=fragment) as info:
        mt.parse_endpoint(text)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ValueRangeError)


@pytest.mark.parametrize("value", [None, 8080, b"http://x"])
def test_parse_non_string_is_a_type_error(value: object) -> None:
    with pytest.raises(DTypeError):
        mt.parse_endpoint(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("args, expected", [
    (("::1", 8080), "http://[::1]:8080"),
    (("[::1]", 8080), "http://[::1]:8080"),
    (("example.com",), "http://example.com"),
    (("example.com", 80), "http://example.com:80"),
    (("Example.com", 443, "https", "api/v1"), "https://example.com:443/api/v1"),
    (("10.0.0.1", None, "ws", "/feed"), "ws://10.0.0.1/feed"),
    (("h", None, "http", "?x=1"), "http://h?x=1"),
    (("fe80::1%eth0", 1), "http://[fe80::1%25eth0]:1"),
])
def test_format_url(args: tuple, expected: str) -> None:
    assert mt.format_url(*args) == expected


@pytest.mark.parametrize("kwargs, error", [
    ({"host": ""}, EndpointError),
    ({"host": "a b"}, EndpointError),
    ({"host": "h", "port": 0}, EndpointError),
    ({"host": "h", "port": 70000}, EndpointError),
    ({"host": "h", "port": True}, DTypeError),
    ({"host": "h", "port": "80"}, DTypeError),
    ({"host": "h", "scheme": "gopher"}, EndpointError),
    ({"host": 1}, DTypeError),
    ({"host": "h", "path": "a b"}, EndpointError),
])
def test_format_url_errors(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        mt.format_url(**kwargs)


_label = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,10}[a-z0-9])?", fullmatch=True)
_hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.lists(_label, min_size=1, max_size=4).map(".".join).filter(
        lambda h: not all(c.isdigit() or c == "." for c in h)),
)
_paths = st.from_regex(r"(/[A-Za-z0-9._~\-]{0,8}){0,3}(\?[a-z0-9=&]{0,8})?", fullmatch=True)


@given(host=_hosts, port=st.one_of(st.none(), st.integers(1, 65535)),
       scheme=st.sampled_from(sorted(DEFAULT_PORTS)), path=_paths)
def test_format_then_parse_round_trips(host: str, port: int | None, scheme: str,
                                       path: str) -> None:
    url = mt.format_url(host, port, scheme, path)
    endpoint = mt.parse_endpoint(url)
    expected_port = DEFAULT_PORTS[scheme] if port is None else port
    assert endpoint == E(scheme, host, expected_port, path)
    assert mt.parse_endpoint(endpoint.url) == endpoint
    if ":" in host:
        assert f"[{ipaddress.IPv6Address(host)}]" in url


@given(host=_hosts, port=st.integers(1, 65535))
def test_scheme_less_host_port_is_http(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    assert mt.parse_endpoint(f"{shown}:{port}") == E("http", host, port, "")
