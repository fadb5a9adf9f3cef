"""Downloading images providers return as hosted URLs, with guards.

Only http(s); the host must resolve to public addresses unless it is one the operator
configured (a provider's own base URL may be on loopback or a LAN, e.g. AUTOMATIC1111);
redirects are followed by hand so every hop is checked; size and time are capped.

The connection goes to the address that was checked, not to whatever the name resolves to
a moment later (DNS rebinding): the URL's host is replaced by that address, the ``Host``
header keeps the name, and for https the name is still used for SNI and the certificate
check (httpx's ``sni_hostname`` extension, which needs httpx's own transport: the client
given must use it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import httpx

from limner.errors import Code, InvalidArgument, LimnerError, Unavailable

MAX_REDIRECTS = 3


class DownloadRefused(LimnerError):
    """The URL is not one Limner will fetch (scheme, private address, too large)."""

    code = Code.FAILED_PRECONDITION
    reason = "DOWNLOAD_REFUSED"


class UrlFetcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        max_bytes: int,
        timeout_s: float = 30.0,
        trusted_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.client = client
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.trusted_hosts = trusted_hosts

    async def fetch(self, url: str, *, extra_trusted: frozenset[str] = frozenset()) -> bytes:
        trusted = self.trusted_hosts | extra_trusted
        try:
            async with asyncio.timeout(self.timeout_s):
                for _ in range(MAX_REDIRECTS + 1):
                    address = await self._check(url, trusted)
                    target, headers, extensions = pinned(url, address)
                    async with self.client.stream(
                        "GET",
                        target,
                        headers=headers,
                        extensions=extensions,
                        follow_redirects=False,
                        timeout=self.timeout_s,
                    ) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urljoin(url, response.headers["location"])
                            continue
                        if not response.is_success:
                            raise Unavailable(
                                f"downloading the provider's image failed: HTTP "
                                f"{response.status_code} from {urlsplit(url).hostname}",
                                reason="DOWNLOAD_FAILED",
                                metadata={"status": str(response.status_code)},
                            )
                        declared = int(response.headers.get("content-length") or 0)
                        if declared > self.max_bytes:
                            raise self._too_large(declared)
                        chunks: list[bytes] = []
                        size = 0
                        async for chunk in response.aiter_bytes():
                            size += len(chunk)
                            if size > self.max_bytes:
                                raise self._too_large(size)
                            chunks.append(chunk)
                        return b"".join(chunks)
                raise DownloadRefused(f"more than {MAX_REDIRECTS} redirects while downloading")
        except TimeoutError:
            raise Unavailable(
                f"downloading the provider's image took longer than {self.timeout_s:g} s",
                reason="DOWNLOAD_FAILED",
            ) from None
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"downloading the provider's image failed ({type(exc).__name__})",
                reason="DOWNLOAD_FAILED",
            ) from None

    def _too_large(self, size: int) -> DownloadRefused:
        return DownloadRefused(
            f"the provider's image is larger than the {self.max_bytes} byte limit ({size} bytes)",
            metadata={"limit": str(self.max_bytes)},
        )

    async def _check(self, url: str, trusted: frozenset[str]) -> str | None:
        """Refuses a URL Limner must not fetch; returns the public address to connect to
        (``None`` for a host the operator trusts, which is fetched by name)."""
        try:
            return await checked_address(url, trusted=trusted)
        except UnsupportedUrl as refused:
            raise DownloadRefused(
                f"only http(s) image URLs are downloaded, not {refused.scheme!r}"
            ) from None
        except HostUnresolved as unresolved:
            raise Unavailable(
                f"the image host {unresolved.host} does not resolve", reason="DOWNLOAD_FAILED"
            ) from None
        except PrivateAddress as private:
            raise DownloadRefused(
                f"refusing to download from {private.host}: it resolves to a non-public "
                f"address ({private.address}); configure the provider on that host to allow it",
                metadata={"host": private.host},
            ) from None


class UnsupportedUrl(Exception):
    """Not an http(s) URL with a host."""

    def __init__(self, scheme: str) -> None:
        super().__init__(f"not an http(s) URL: {scheme!r}")
        self.scheme = scheme


class HostUnresolved(Exception):
    def __init__(self, host: str) -> None:
        super().__init__(f"{host} does not resolve")
        self.host = host


class PrivateAddress(Exception):
    """The host resolves to an address that is not public (loopback, private, link-local,
    reserved...)."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to a non-public address ({address})")
        self.host = host
        self.address = address


async def checked_address(
    url: str, *, trusted: frozenset[str] = frozenset(), allow_private: bool = False
) -> str | None:
    """The address to connect to for ``url``, checked: only http(s), and every address the
    host resolves to must be public unless ``allow_private`` (``None`` for a host in
    ``trusted``, which is connected to by name). Connect to the answer with :func:`pinned`,
    so a second lookup cannot rebind the name. Raises ``UnsupportedUrl``,
    ``HostUnresolved`` or ``PrivateAddress``; callers turn them into their own errors (the
    downloader above, webhook targets in ``limner.features.webhooks``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsupportedUrl(parts.scheme)
    host = parts.hostname.lower()
    if host in trusted:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host,
            parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except (OSError, ValueError):  # ValueError: a port out of range
        raise HostUnresolved(host) from None
    if not infos:
        raise HostUnresolved(host)
    if not allow_private:
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise PrivateAddress(host, str(address))
    return str(infos[0][4][0])


def pinned(url: str, address: str | None) -> tuple[str, dict[str, str], dict[str, str]]:
    """The request for ``url`` sent to ``address`` (already checked) instead of the name:
    the URL to use, the headers and the httpx extensions."""
    if address is None:
        return url, {}, {}
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    name = f"[{host}]" if ":" in host else host
    headers = {"Host": f"{name}:{parts.port}" if parts.port else name}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), headers, extensions


def host_of(url: str) -> str:
    host = urlsplit(url).hostname
    if not host:
        raise InvalidArgument.field("base_url", f"{url!r} has no host")
    return host.lower()
