"""Which deliveries an event makes: destinations, vendor form, body.

Destinations of a conference's events:

- **Telnyx form** (all ``conference.*`` webhooks): the conference's ``webhook_url`` (with its
  ``webhook_failover_url``) if set, else the account's ``webhooks.accounts[].url`` (with its
  ``failover_url``) from config.yaml. So an account URL receives every conference's events,
  whichever API created it (config rooms included); Audian ``member_notification`` conferences
  thus report joins and leaves there too, and their tones are unchanged.
- **FreeClimb form** (``conferenceStatus``): the conference's ``statusCallbackUrl``, no failover
  (FreeClimb has none).

A saved recording (``RecordingSaved``) becomes Telnyx ``conference.recording.saved`` with signed
download links that expire (``recording_urls``), and a FreeClimb ``conferenceRecordingStatus``
with ``recordingUrl``/``recordingId``/``recordingDurationSec``, sent once the conference is empty
(held back while people are still in).

Events of conferences without an account, or unknown to the service, go nowhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..config import WebhookAccountConfig
from ..control.call_events import CallEvent
from ..control.events import ConferenceEnded, DomainEvent, ParticipantJoined, RecordingSaved
from .call_envelopes import call_delivery
from ..control.model import OPEN_STATUSES, Conference
from .envelopes import Recording, delivery_id, encode, freeclimb_body, telnyx_event, telnyx_recording_saved
from .freeclimb_status import FreeClimbStatusTracker
from .model import Delivery


@dataclass(frozen=True)
class Destination:
    url: str
    failover_url: str | None


def telnyx_destination(conf: Conference, accounts: Mapping[str, WebhookAccountConfig]) -> Destination | None:
    if conf.webhook_url:
        return Destination(conf.webhook_url, conf.webhook_failover_url)
    acct = accounts.get(conf.account_id or "")
    if acct is not None and acct.url:
        return Destination(acct.url, conf.webhook_failover_url or acct.failover_url)
    return None


class Router:
    def __init__(
        self,
        accounts: Mapping[str, WebhookAccountConfig],
        lookup: Callable[[str], Conference | None],
        recording_urls: Callable[[RecordingSaved], dict[str, str]] | None = None,
    ) -> None:
        self.accounts = dict(accounts)
        self.lookup = lookup
        # Signed, expiring download links of a saved recording: format -> URL (the recording adapter).
        self.recording_urls = recording_urls
        self.freeclimb = FreeClimbStatusTracker()
        self._fc_waiting: dict[str, list[tuple[RecordingSaved, Recording]]] = {}
        # Conferences whose ``conference.ended`` went out with nobody joining since: the room
        # emptying ends a Telnyx conference, so the API ending it afterwards says nothing new.
        self._telnyx_ended: set[str] = set()

    def _telnyx_repeat(self, event: DomainEvent) -> bool:
        conf_id = event.conference_id
        if isinstance(event, ConferenceEnded):
            if conf_id in self._telnyx_ended:
                return True
            self._telnyx_ended.add(conf_id)
        elif isinstance(event, ParticipantJoined):
            self._telnyx_ended.discard(conf_id)
        return False

    def route(self, event: DomainEvent) -> list[Delivery]:
        return self.route_with(event, self.lookup(event.conference_id))

    def route_with(self, event: DomainEvent, conf: Conference | None) -> list[Delivery]:
        """Route with the conference as it was when the event was drained (routing may run later)."""
        if isinstance(event, CallEvent):
            return [call_delivery(event)]   # Telnyx call control: to the application's URL
        if conf is None or conf.account_id is None:
            if isinstance(event, ConferenceEnded):
                self.freeclimb.forget(event.conference_id)
            return []
        created = event.at.timestamp()
        out: list[Delivery] = []
        if isinstance(event, RecordingSaved):
            return self._recording(event, conf)
        dest = telnyx_destination(conf, self.accounts)
        if dest is not None and not self._telnyx_repeat(event):
            built = telnyx_event(event, conf)
            if built is not None:
                event_type, body = built
                out.append(Delivery(
                    id=body["data"]["id"], conference_id=conf.id, account_id=conf.account_id,
                    event_id=event.event_id, event_type=event_type, form="telnyx", url=dest.url,
                    failover_url=dest.failover_url, body=encode(body), created_at=created,
                    next_attempt_at=created,
                ))
        statuses = self.freeclimb.observe(event, conference_open=conf.status in OPEN_STATUSES)
        if conf.status_callback_url:
            for status in statuses:
                out.append(Delivery(
                    id=delivery_id(event.event_id, "freeclimb", status), conference_id=conf.id,
                    account_id=conf.account_id, event_id=event.event_id, event_type=f"conferenceStatus.{status}",
                    form="freeclimb", url=conf.status_callback_url, failover_url=None,
                    body=encode(freeclimb_body(conf, status)), created_at=created, next_attempt_at=created,
                ))
        if statuses and statuses[-1] in ("empty", "terminated"):
            for saved, rec in self._fc_waiting.pop(conf.id, []):
                out += self._freeclimb_recording(saved, rec, conf)
        return out

    def _recording(self, event: RecordingSaved, conf: Conference) -> list[Delivery]:
        assert conf.account_id is not None
        urls = self.recording_urls(event) if self.recording_urls is not None else {}
        rec = Recording(event.recording_id, event.started_at, event.ended_at, urls, None, event.channels,
                        event.format)
        out: list[Delivery] = []
        dest = telnyx_destination(conf, self.accounts)
        created = event.at.timestamp()
        if dest is not None:
            body = telnyx_recording_saved(conf, rec, delivery_id(event.event_id), event.at)
            out.append(Delivery(
                id=body["data"]["id"], conference_id=conf.id, account_id=conf.account_id, event_id=event.event_id,
                event_type="conference.recording.saved", form="telnyx", url=dest.url,
                failover_url=dest.failover_url, body=encode(body), created_at=created, next_attempt_at=created))
        if conf.status_callback_url:
            if self.freeclimb.status(conf.id) in ("populated", "inProgress"):
                self._fc_waiting.setdefault(conf.id, []).append((event, rec))   # FreeClimb: after it empties
            else:
                out += self._freeclimb_recording(event, rec, conf)
        return out

    def _freeclimb_recording(self, event: RecordingSaved, rec: Recording, conf: Conference) -> list[Delivery]:
        assert conf.account_id is not None and conf.status_callback_url is not None
        created = event.at.timestamp()
        status = self.freeclimb.status(conf.id) or "empty"
        body = freeclimb_body(conf, status, recording=rec, request_type="conferenceRecordingStatus")
        return [Delivery(
            id=delivery_id(event.event_id, "freeclimb", "recording"), conference_id=conf.id,
            account_id=conf.account_id, event_id=event.event_id, event_type="conferenceRecordingStatus",
            form="freeclimb", url=conf.status_callback_url, failover_url=None, body=encode(body),
            created_at=created, next_attempt_at=created)]
