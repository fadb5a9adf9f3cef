"""Posting webhooks: the delivery outbox's dispatcher (``dispatcher``), Standard Webhooks
signatures (``signing``) and what the dispatcher needs from storage (``store``;
``limner.persistence.webhooks`` implements it).

Deliveries are queued by the job store in the transaction that logs their event; this
package only posts them, retries them with backoff and records each attempt. It speaks
HTTP (httpx) and checks every target with the downloader's address guard
(``limner.assets.fetch``); it imports nothing of grpc, the stubs or the database.
"""
