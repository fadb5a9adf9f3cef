"""What `limner generate` and `limner watch` print when they stop before the job ends:
commands that reach the same server the same way (TLS files, API key from the
environment, never the key itself)."""

from __future__ import annotations

from limner.cli import _Followed
from limner.client import TlsConfig


def test_a_plaintext_hint_names_the_job_and_the_commands():
    hint = _Followed("127.0.0.1:50051", job="jobs/abc").connected_with("", None).hint("stopped")
    assert hint.splitlines() == [
        "stopped: jobs/abc keeps running on the server.",
        "  follow it:  limner watch jobs/abc --address 127.0.0.1:50051",
        "  cancel it:  limner cancel jobs/abc --address 127.0.0.1:50051",
        '  or with grpcurl:  grpcurl -plaintext -d \'{"name":"jobs/abc"}\' 127.0.0.1:50051 '
        "limner.v1.JobService/WatchJob  (or .../CancelJob)",
    ]


def test_a_tls_hint_repeats_the_files_and_keeps_the_api_key_out():
    tls = TlsConfig(ca_cert="ca.pem", client_cert="me.pem", client_key="me.key")
    followed = _Followed("limner:443", job="jobs/abc").connected_with("s3cret", tls)
    hint = followed.hint("interrupted")
    assert (
        "limner watch jobs/abc --address limner:443 --ca-cert ca.pem "
        "--client-cert me.pem --client-key me.key"
    ) in hint
    assert (
        "grpcurl -cacert ca.pem -cert me.pem -key me.key "
        '-H "authorization: Bearer $LIMNER_API_KEY" -d'
    ) in hint
    assert "s3cret" not in hint and "-plaintext" not in hint


def test_before_the_job_is_named_the_hint_gives_the_request_id():
    hint = _Followed("127.0.0.1:50051", request_id="r-1").hint("interrupted")
    assert hint == (
        "interrupted before the server named the job. Run the same command with "
        "--request-id r-1 to pick up the job it may have created."
    )
