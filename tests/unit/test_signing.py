"""Standard Webhooks signatures, checked against values the `standardwebhooks` package made."""

from __future__ import annotations

import time

import pytest
import standardwebhooks

from broker.delivery import signing
from broker.delivery.endpoint import Endpoint

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_YW5vdGhlciBzZWNyZXQga2V5IDAxMjM0NTY3ODk="
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1700000000
BODY = b'{"test": 2432232314}'
# Computed once with standardwebhooks.Webhook(secret).sign(MSG_ID, 1700000000, BODY).
EXPECTED = "v1,hw6D+jquXiPwVQiZTwb2ek9FSrOofldv7tv4JVMsFUY="
EXPECTED_OTHER = "v1,meUgpNw38dViciq9vYJ3rWAefCCEHmpnKkUlotrnjyE="


def test_sign_matches_a_known_signature() -> None:
    assert signing.sign(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED
    assert signing.sign(OTHER, MSG_ID, TIMESTAMP, BODY) == EXPECTED_OTHER


def test_a_secret_without_padding_or_prefix_works() -> None:
    assert signing.sign(SECRET.removeprefix("whsec_"), MSG_ID, TIMESTAMP, BODY) == EXPECTED
    assert signing.sign(OTHER.rstrip("="), MSG_ID, TIMESTAMP, BODY) == EXPECTED_OTHER


def test_the_header_lists_one_signature_per_secret() -> None:
    assert signing.signature_header([SECRET], MSG_ID, TIMESTAMP, BODY) == EXPECTED
    assert (
        signing.signature_header([SECRET, OTHER], MSG_ID, TIMESTAMP, BODY)
        == f"{EXPECTED} {EXPECTED_OTHER}"
    )


def test_verify_accepts_any_listed_signature_and_refuses_tampering() -> None:
    header = f"{EXPECTED} {EXPECTED_OTHER}"
    assert signing.verify(SECRET, MSG_ID, TIMESTAMP, BODY, header)
    assert signing.verify(OTHER, MSG_ID, TIMESTAMP, BODY, header)
    assert not signing.verify(SECRET, MSG_ID, TIMESTAMP, BODY + b" ", header)
    assert not signing.verify(SECRET, MSG_ID, TIMESTAMP + 1, BODY, header)
    assert not signing.verify(SECRET, "msg_other", TIMESTAMP, BODY, header)


@pytest.mark.parametrize("secrets", [[SECRET], [SECRET, OTHER], [OTHER, SECRET]])
def test_the_standardwebhooks_package_verifies_our_headers(secrets: list[str]) -> None:
    now = int(time.time())
    body = '{"message":{"text":"Grüße"}}'.encode()
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(now),
        "webhook-signature": signing.signature_header(secrets, MSG_ID, now, body),
    }
    for secret in secrets:
        assert standardwebhooks.Webhook(secret).verify(body, headers) == {
            "message": {"text": "Grüße"}
        }
    stranger = "whsec_" + "QUJD" * 8
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(stranger).verify(body, headers)


def test_an_endpoint_keeps_signing_with_the_secrets_rotated_out_for_a_day() -> None:
    endpoint = Endpoint(id="ch_1", kind="channel", bot_id="b", url="http://x/", secret="s0")
    for n in range(1, 8):
        endpoint = endpoint.rotated(f"s{n}", now=1000.0 * n)
    assert endpoint.signing_secrets(8000.0) == ["s7", "s6", "s5", "s4", "s3", "s2"]
    assert endpoint.signing_secrets(7000.0 + 24 * 3600) == ["s7"]
    stored = Endpoint.from_redis(_as_stored(endpoint))
    assert stored.signing_secrets(8000.0) == endpoint.signing_secrets(8000.0)


def test_an_endpoint_stored_with_a_single_previous_secret_is_read() -> None:
    raw = _as_stored(Endpoint(id="ch_1", kind="channel", bot_id="b", url="http://x/", secret="n"))
    del raw["previousSecrets"]
    raw.update(previousSecret="old", previousSecretUntil="2000.0")
    assert Endpoint.from_redis(raw).signing_secrets(1000.0) == ["n", "old"]


def _as_stored(endpoint: Endpoint) -> dict[str, str]:
    """The endpoint's hash as Redis gives it back: text."""
    return {str(name): str(value) for name, value in endpoint.to_redis().items()}
