"""The fetch Lambda's URL guard, without network: a fake resolver stands in for DNS."""

from __future__ import annotations

import ipaddress

import pytest

from lambdas.ssrf import UnsafeURLError, UrlGuard, blocked_reason

NAMES = {
    "video.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "sneaky.example.com": ["93.184.216.34", "10.0.0.7"],
    "rebind.example.com": ["127.0.0.1"],
    "meta.example.com": ["fd00:ec2::254"],
}


def fake_resolver(host: str, port: int) -> list[str]:
    if host not in NAMES:
        raise UnsafeURLError(f"cannot resolve host {host!r}")
    return NAMES[host]


GUARD = UrlGuard(resolver=fake_resolver)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.mp4",
        "http://localhost.:80/",  # not in the fake DNS: unresolvable is refused too
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped metadata
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0x7f000001/",  # hex
        "http://0177.0.0.1/",  # octal
        "http://127.1/",  # short form
        "http://0xa9.0xfe.0xa9.0xfe/",  # hex metadata
        "http://sneaky.example.com/",  # one private address among public ones
        "http://rebind.example.com/",
        "http://meta.example.com/",
    ],
)
def test_private_and_special_addresses_are_refused(url):
    with pytest.raises(UnsafeURLError, match=r"refusing|cannot resolve"):
        GUARD.check(url)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://video.example.com/x.mp4",
        "gopher://video.example.com/",
        "s3://bucket/key",
        "data:video/mp4;base64,AAAA",
        "//video.example.com/x.mp4",
        "http://user:secret@video.example.com/x.mp4",
        "http:///x.mp4",
        "http://video.example.com:99999/",
    ],
)
def test_other_schemes_and_malformed_urls_are_refused(url):
    with pytest.raises(UnsafeURLError):
        GUARD.check(url)


def test_public_names_and_addresses_pass():
    target = GUARD.check("https://video.example.com/a/b.mp4?x=1")
    assert (target.scheme, target.host, target.port) == ("https", "video.example.com", 443)
    assert target.address == "93.184.216.34"
    assert GUARD.check("http://[2606:4700::1111]:8080/").port == 8080
    assert GUARD.check("HTTP://8.8.8.8/").address == "8.8.8.8"


def test_allow_list_opens_one_network_only():
    guard = UrlGuard(allow=(ipaddress.ip_network("127.0.0.0/8"),), resolver=fake_resolver)
    assert guard.check("http://127.0.0.1:8000/x").address == "127.0.0.1"
    with pytest.raises(UnsafeURLError, match="metadata"):
        guard.check("http://169.254.169.254/")


def test_reasons_name_the_kind_of_address():
    assert "metadata" in blocked_reason(ipaddress.ip_address("169.254.169.254"))
    assert "loopback" in blocked_reason(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert blocked_reason(ipaddress.ip_address("1.1.1.1")) is None
