"""Signatures on the wire, checked with the standardwebhooks package, across a secret rotation."""

from __future__ import annotations

import pytest
import standardwebhooks

from tests.integration.stacks import Api
from tests.polling import wait_until
from tests.receivers import Answer, Receiver


def test_every_attempt_is_signed_and_rotation_signs_with_both_secrets(
    api: Api, receiver: Receiver
) -> None:
    receiver.behaviour = lambda hit: Answer(500 if hit.try_number == 1 else 200)
    channel = api.echo_channel(receiver.url, retrySchedule=[0, 0.05])
    old = channel["signingSecret"]
    api.send(channel, "signed", "before")
    wait_until(lambda: len(receiver.hits) == 2, what="an attempt and its retry")
    for hit in receiver.hits:  # the failed attempt too
        assert standardwebhooks.Webhook(old).verify(hit.raw, hit.headers)["message"] == {
            "text": "You said: before"
        }
        assert " " not in hit.headers["webhook-signature"]

    rotated = api.post(
        f"/v1/bots/{channel['botId']}/channels/webhook/{channel['id']}/rotate-secret"
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["signingSecret"]
    assert new.startswith("whsec_") and new != old
    api.send(channel, "signed", "after")
    wait_until(lambda: len(receiver.hits) == 4, what="the reply after rotation")

    for hit in receiver.hits[2:]:
        signatures = hit.headers["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        for secret in (new, old):
            verified = standardwebhooks.Webhook(secret).verify(hit.raw, hit.headers)
            assert verified["message"] == {"text": "You said: after"}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        stranger = "whsec_" + "c2VjcmV0IG9mIHNvbWVvbmUgZWxzZQ=="
        standardwebhooks.Webhook(stranger).verify(receiver.hits[-1].raw, receiver.hits[-1].headers)
    assert receiver.hits[2].webhook_id == receiver.hits[3].webhook_id
