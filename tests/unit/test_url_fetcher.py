"""The download guard: what it refuses, and that it connects to the address it checked."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from limner.assets.fetch import DownloadRefused, UrlFetcher, pinned

PUBLIC = "93.184.216.34"
PRIVATE = "10.0.0.7"


class Resolver:
    """A getaddrinfo whose answers change from call to call (as a rebinding DNS does)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host, port, **_kwargs):
        address = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


@pytest.fixture
def seen():
    return []


@pytest.fixture
def fetcher(seen):
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"location": "https://cdn.example.com/b.png"})
        return httpx.Response(200, content=b"image bytes")

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return UrlFetcher(client, max_bytes=1024)


async def test_connects_to_the_checked_address_and_keeps_the_name(fetcher, seen, monkeypatch):
    resolver = Resolver(PUBLIC, PRIVATE)  # public when checked, private a moment later
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver)

    assert await fetcher.fetch("https://img.example.com:8443/a.png?x=1") == b"image bytes"

    (request,) = seen
    assert str(request.url) == f"https://{PUBLIC}:8443/a.png?x=1"
    assert request.headers["host"] == "img.example.com:8443"
    assert request.extensions["sni_hostname"] == "img.example.com"
    assert resolver.calls == 1  # resolved once: the connection cannot be re-pointed


async def test_every_redirect_hop_is_checked_again(fetcher, seen, monkeypatch):
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", Resolver(PUBLIC, PRIVATE))
    with pytest.raises(DownloadRefused) as refused:
        await fetcher.fetch("http://img.example.com/moved")
    assert "cdn.example.com" in refused.value.message and PRIVATE in refused.value.message
    assert [request.url.path for request in seen] == ["/moved"]
    assert "sni_hostname" not in seen[0].extensions  # plain http


async def test_trusted_hosts_are_fetched_by_name(seen):
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"ok")

    fetcher = UrlFetcher(httpx.AsyncClient(transport=httpx.MockTransport(answer)), max_bytes=8)
    url = "http://127.0.0.1:7860/file=out.png"
    assert await fetcher.fetch(url, extra_trusted=frozenset({"127.0.0.1"})) == b"ok"
    assert str(seen[0].url) == url


def test_pinned_brackets_ipv6_addresses():
    url, headers, extensions = pinned("https://img.example.com/a.png", "2606:2800:220:1::1")
    assert url == "https://[2606:2800:220:1::1]/a.png"
    assert headers == {"Host": "img.example.com"}
    assert extensions == {"sni_hostname": "img.example.com"}
