"""Standard Webhooks signatures (https://www.standardwebhooks.com).

A delivery carries ``webhook-id`` (the same on every retry), ``webhook-timestamp`` (unix
seconds of the attempt) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of
``"{id}.{timestamp}.{body}"`` keyed with the secret's bytes (``whsec_<base64>``), one
space-separated signature per configured secret (the current one, then those being
rotated out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (checked by ``limner.settings``)."""
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, message_id, timestamp, body) for k in keys),
    }
