"""The official ``freeclimb`` library against a real bridge, its host changed only."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import freeclimb
import pytest
from freeclimb.api.default_api import DefaultApi
from freeclimb.exceptions import ApiException
from freeclimb.models.conference_result import ConferenceResult
from freeclimb.models.create_conference_request import CreateConferenceRequest
from freeclimb.models.play_beep import PlayBeep
from freeclimb.models.update_conference_request import UpdateConferenceRequest
from freeclimb.models.update_conference_request_status import UpdateConferenceRequestStatus

from tests.support.bridge_proc import DEMO_TOKEN, OTHER_TOKEN, BridgeProcess

CALLBACK = "https://example.com/freeclimb/status"


def freeclimb_api(bridge: BridgeProcess, account: str = "acct1", key: str = DEMO_TOKEN) -> DefaultApi:
    cfg = freeclimb.Configuration(host=bridge.base_url + "/freeclimb/apiserver", username=account, password=key)
    return DefaultApi(freeclimb.ApiClient(cfg))


def create(api: DefaultApi, **fields: object) -> ConferenceResult:
    resp = api.create_a_conference_with_http_info(
        CreateConferenceRequest(**{"status_callback_url": CALLBACK, **fields}))  # type: ignore[arg-type]
    assert resp.status_code == 202
    return ConferenceResult.from_json(resp.raw_data.decode())  # type: ignore[return-value]


@pytest.fixture
def bridge(bridge_factory: Callable[..., BridgeProcess]) -> BridgeProcess:
    return bridge_factory(rooms=[])


def test_create_get_list_update_terminate(bridge: BridgeProcess) -> None:
    api = freeclimb_api(bridge)
    conf = create(api, alias="Weekly sync", play_beep=PlayBeep.ENTRY_ONLY)
    assert conf.conference_id and conf.account_id == "acct1"
    assert conf.alias == "Weekly sync" and conf.play_beep == PlayBeep.ENTRY_ONLY
    assert conf.status and conf.status.value == "empty"
    assert conf.record is False and conf.status_callback_url == CALLBACK
    assert conf.uri == f"/Accounts/acct1/Conferences/{conf.conference_id}"
    assert conf.date_created and conf.date_created.endswith(" GMT")
    got = api.get_a_conference(conf.conference_id)
    assert got.conference_id == conf.conference_id and got.alias == "Weekly sync"
    listing = api.list_conferences()
    assert listing.total == 1 and listing.conferences and listing.conferences[0].conference_id == conf.conference_id
    assert api.list_conferences(alias="nope").total == 0
    api.update_a_conference(conf.conference_id, UpdateConferenceRequest(alias="Renamed", play_beep=PlayBeep.NEVER))
    got = api.get_a_conference(conf.conference_id)
    assert got.alias == "Renamed" and got.play_beep == PlayBeep.NEVER
    # One model: the Audian form sees the same conference, with its dial-in code.
    status, flat = bridge.api("GET", f"/v2/conferences/{conf.conference_id}")
    assert status == 200 and flat["name"] == "Renamed" and flat["dial_in_code"]
    api.update_a_conference(conf.conference_id, UpdateConferenceRequest(status=UpdateConferenceRequestStatus.TERMINATED))
    got = api.get_a_conference(conf.conference_id)
    assert got.status and got.status.value == "terminated"
    assert api.list_conferences(status="terminated").total == 1
    assert api.list_conferences(status="empty").total == 0
    assert api.list_participants(conf.conference_id).participants == []


def test_defaults_and_alias_optional(bridge: BridgeProcess) -> None:
    conf = create(freeclimb_api(bridge))
    assert conf.alias is None and conf.play_beep == PlayBeep.ALWAYS and conf.wait_url is None


def _raw(bridge: BridgeProcess, method: str, path: str, body: object = None,
         auth: tuple[str, str] | None = ("acct1", DEMO_TOKEN)) -> tuple[int, dict[str, object], dict[str, str]]:
    import base64
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(bridge.base_url + "/freeclimb/apiserver" + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}, dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def test_errors_are_freeclimb_shaped(bridge: BridgeProcess) -> None:
    with pytest.raises(ApiException) as info:
        freeclimb_api(bridge, key="wrong").list_conferences()
    assert info.value.status == 401
    body = json.loads(info.value.body)
    assert body["code"] == 401 and "message" in body and "details" in body
    status, body, headers = _raw(bridge, "GET", "/Accounts/acct1/Conferences", auth=None)
    assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Basic")
    # Another account's key does not open acct1's path.
    status, body, _ = _raw(bridge, "GET", "/Accounts/acct1/Conferences", auth=("acct2", OTHER_TOKEN))
    assert status == 403 and body["code"] == 403
    for bad, word in [
        ({"alias": "x"}, "statusCallbackUrl is required"),
        ({"statusCallbackUrl": CALLBACK, "playBeep": "sometimes"}, "playBeep"),
        ({"statusCallbackUrl": CALLBACK, "record": "yes"}, "record"),
        ({"statusCallbackUrl": CALLBACK, "actionUrl": CALLBACK}, "unknown field"),
        ({"statusCallbackUrl": CALLBACK, "alias": "x" * 65}, "alias"),
        ({"statusCallbackUrl": "ftp://example.com/x"}, "statusCallbackUrl"),
        ({"statusCallbackUrl": "http://127.0.0.1/cb"}, "statusCallbackUrl"),
    ]:
        status, body, _ = _raw(bridge, "POST", "/Accounts/acct1/Conferences", bad)
        assert status == 400, (bad, body)
        assert word in str(body["message"]), (bad, body)
        assert body["code"] == 400
    status, body, _ = _raw(bridge, "GET", "/Accounts/acct1/Conferences/conf_0000000000000000")
    assert status == 404 and body["code"] == 404
    status, body, _ = _raw(bridge, "GET", "/Accounts/acct1/Nothing")
    assert status == 404 and body["code"] == 404
    status, conf, _ = _raw(bridge, "POST", "/Accounts/acct1/Conferences", {"statusCallbackUrl": CALLBACK})
    cid = conf["conferenceId"]
    status, body, _ = _raw(bridge, "POST", f"/Accounts/acct1/Conferences/{cid}", {"status": "populated"})
    assert status == 400 and "status" in str(body["message"])
    status, body, _ = _raw(bridge, "GET", f"/Accounts/acct1/Conferences/{cid}/Participants/nobody")
    assert status == 404
