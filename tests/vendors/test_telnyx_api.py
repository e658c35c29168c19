"""The official ``telnyx`` library against a real bridge, its base URL changed only."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import telnyx

from tests.support.bridge_proc import DEMO_TOKEN, BridgeProcess


def telnyx_client(bridge: BridgeProcess, key: str = DEMO_TOKEN) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key=key, base_url=bridge.base_url + "/telnyx/v2", max_retries=0)


@pytest.fixture
def bridge(bridge_factory: Callable[..., BridgeProcess]) -> BridgeProcess:
    return bridge_factory(rooms=[])


def _errors(exc: telnyx.APIStatusError) -> list[dict[str, object]]:
    body = json.loads(exc.response.text)
    assert set(body) == {"errors"}
    for e in body["errors"]:
        assert {"code", "title", "detail"} <= set(e)
    return body["errors"]  # type: ignore[no-any-return]


def test_conference_made_elsewhere_is_a_telnyx_conference(bridge: BridgeProcess) -> None:
    status, made = bridge.api("POST", "/v2/conferences", {"name": "standup"})
    assert status == 201
    client = telnyx_client(bridge)
    got = client.conferences.retrieve(made["id"]).data
    assert got is not None
    assert got.record_type == "conference" and got.id == made["id"] and got.name == "standup"
    assert got.status == "init" and got.connection_id == "acct1" and got.expires_at
    page = client.conferences.list()
    assert [c.id for c in page.data] == [made["id"]]
    assert [c.id for c in client.conferences.list(filter={"name": "nope"}).data] == []
    assert client.conferences.list_participants(made["id"]).data == []
    # mute/unmute with no ids = everyone (nobody here): ok
    assert client.conferences.actions.mute(made["id"]).data.result == "ok"  # type: ignore[union-attr]
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.actions.mute(made["id"], call_control_ids=["nobody"])
    assert _errors(info.value)[0]["source"] == {"pointer": "/call_control_ids"}
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.actions.update(made["id"], call_control_id="x", supervisor_role="whisper")
    assert "whisper" in str(_errors(info.value)[0]["detail"])
    assert client.conferences.actions.end_conference(made["id"], command_id="end-1").data.result == "ok"  # type: ignore[union-attr]
    assert client.conferences.retrieve(made["id"]).data.status == "completed"  # type: ignore[union-attr]
    assert client.conferences.retrieve(made["id"]).data.end_reason == "ended_via_api"  # type: ignore[union-attr]
    # The same command_id within 60 s is ignored (answered ok); a new one is refused: already over.
    assert client.conferences.actions.end_conference(made["id"], command_id="end-1").data.result == "ok"  # type: ignore[union-attr]
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.conferences.actions.end_conference(made["id"], command_id="end-2")


def test_errors_are_telnyx_shaped(bridge: BridgeProcess) -> None:
    with pytest.raises(telnyx.AuthenticationError) as auth:
        telnyx_client(bridge, key="wrong").conferences.list()
    assert _errors(auth.value)[0]["code"] == "10009"
    client = telnyx_client(bridge)
    with pytest.raises(telnyx.NotFoundError) as nf:
        client.conferences.retrieve("conf_0000000000000000")
    assert _errors(nf.value)[0]["code"] == "10005"
    for kwargs, pointer in [
        ({"max_participants": 1}, "/max_participants"),
        ({"max_participants": 801}, "/max_participants"),
        ({"beep_enabled": "sometimes"}, "/beep_enabled"),
        ({"client_state": "not base64!"}, "/client_state"),
        ({"region": "US"}, "/region"),
        ({"hold_audio_url": "ftp://x"}, "/hold_audio_url"),
    ]:
        with pytest.raises(telnyx.UnprocessableEntityError) as info:
            client.conferences.create(call_control_id="v3:abc", name="x", **kwargs)  # type: ignore[arg-type]
        assert _errors(info.value)[0]["source"] == {"pointer": pointer}, kwargs
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.create(call_control_id="v3:abc", name="x", max_participants=2)
    err = _errors(info.value)[0]
    assert err["source"] == {"pointer": "/call_control_id"} and "call control" in str(err["detail"])
    status, _ = telnyx_client(bridge).conferences.with_raw_response.list().status_code, None
    assert status == 200
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.list(extra_query={"filter[failed]": "true"})
    assert "filter[failed]" in str(_errors(info.value)[0]["detail"])
    status, made = bridge.api("POST", "/v2/conferences", {"name": "x"})
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.actions.play(made["id"], media_name="no-such-tune")
    assert _errors(info.value)[0]["source"] == {"pointer": "/media_name"}
    with pytest.raises(telnyx.UnprocessableEntityError) as info:     # play reaches everyone, or nobody
        client.conferences.actions.play(made["id"], media_name="x", call_control_ids=["a"])
    assert _errors(info.value)[0]["source"] == {"pointer": "/call_control_ids"}
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.actions.stop(made["id"])
    assert "nothing is playing" in str(_errors(info.value)[0]["detail"])
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.actions.leave(made["id"], call_control_id="a")
    assert _errors(info.value)[0]["code"] == "90061"
    assert client.conferences.actions.hold(made["id"]).data.result == "ok"  # type: ignore[union-attr]
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.actions.hold(made["id"], audio_url="https://e.com/a.wav", media_name="x")
    assert _errors(info.value)[0]["source"] == {"pointer": "/media_name"}
    with pytest.raises(telnyx.UnprocessableEntityError) as info:
        client.conferences.actions.unhold(made["id"], call_control_ids=[])
    assert _errors(info.value)[0]["code"] == "10004"
