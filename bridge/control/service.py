"""ConferenceService: the one place that creates, changes, ends and routes conferences.

REST (both API forms), SIP routing (``resolve_dial``) and config.yaml rooms all go through it.
It holds every conference in memory (reads never touch the disk, so SIP routing on the event
loop is instant) and hands each change to the repository, whose ``put`` only queues the write.

Lifecycle: ``created`` -> ``active`` (someone is in, ``mark_active``) <-> ``empty`` (the last
caller left, ``mark_empty``) -> ``ended`` (deleted); any open status -> ``expired`` once
``expires_at`` passes. Settings changed over the API reach a live room at its next tick
(``LiveRooms.conference_changed``). Ended and expired conferences stay
listed with their status but can no longer be joined, changed or dialled.
``expires_at`` = (``scheduled_for`` or ``created_at``) + (``duration_minutes`` or 24 h).
Rooms from config.yaml appear as conferences ``conf_<room name>`` that never expire and are
read-only through the API.
"""

from __future__ import annotations

import builtins
from collections import deque
import dataclasses
import os.path
import random
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from ..config import Config, RoomConfig
from ..webhooks.urls import AddressPolicy, validate_url
from .errors import ControlError, not_found
from .events import ConferenceCreated, ConferenceEnded, DomainEvent, EventBus, ParticipantJoined
from .model import (
    OPEN_STATUSES,
    Action,
    Conference,
    ConferenceRepository,
    LiveRooms,
    Media,
    MediaRepository,
    ParticipantView,
)
from .validation import check_pins, parse_action, parse_dial_out, parse_media_name, parse_settings

MAX_OPEN_PER_ACCOUNT = 100
MAX_MEDIA_PER_ACCOUNT = 200  # x 10 MiB: bounds the disk one account can fill
DEFAULT_LIFETIME = timedelta(hours=24)
CODE_DIGITS = 8  # dial-in codes of API conferences: 10000000..99999999

READ_ONLY = ControlError(409, "read_only", "conference is defined in config.yaml")
# Conference attributes the bridge will call, and the API field named in a 400 about them.
DESTINATION_FIELDS = {
    "status_callback_url": "statusCallbackUrl",
    "webhook_url": "webhook_url",
    "webhook_failover_url": "webhook_failover_url",
}
MEDIA_NOT_FOUND = "media not found"


class _NoMediaStore:
    """Media kept in memory only: for stores (test doubles) that do not persist media."""

    def load_media(self) -> list[Media]:
        return []

    def put_media(self, media: Media) -> None:
        pass

    def delete_media(self, media_id: str) -> None:
        pass


@dataclasses.dataclass
class RoomChanges:
    """What a reload did to config.yaml rooms (names)."""

    added: builtins.list[str] = dataclasses.field(default_factory=list)
    changed: builtins.list[str] = dataclasses.field(default_factory=list)
    removed: builtins.list[str] = dataclasses.field(default_factory=list)


def room_conference_id(room_name: str) -> str:
    return f"conf_{room_name}"


class ConferenceService:
    def __init__(
        self,
        store: ConferenceRepository,
        config: Config,
        live: LiveRooms,
        clock: Callable[[], datetime],
        *,
        rng: random.Random | None = None,
        media_store: MediaRepository | None = None,
        bus: EventBus | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self._adds: dict[str, deque[float]] = {}   # per account: when its last dial-outs were asked
        self._url_policy = AddressPolicy.from_config(config.webhooks.allow_networks)
        if media_store is None:
            media_store = store if isinstance(store, MediaRepository) else _NoMediaStore()
        self.media_store = media_store
        self.config = config
        self.live = live
        self.clock = clock
        self._rng = rng if rng is not None else secrets.SystemRandom()
        started = clock()
        self._rooms: dict[str, Conference] = {
            room_conference_id(r.name): self._room_conference(r, started) for r in config.rooms
        }
        self._room_names: dict[str, str] = {r.name: room_conference_id(r.name) for r in config.rooms}
        self._confs: dict[str, Conference] = {}
        self._codes: dict[str, str] = {}
        for conf in store.load_all():
            if conf.id in self._rooms:
                continue  # config.yaml wins over a stale stored row of the same id
            self._confs[conf.id] = conf
            self._codes[conf.dial_in_code] = conf.id
        for cid, conf in self._rooms.items():
            if conf.dial_in_code:
                self._codes[conf.dial_in_code] = cid
        self._media: dict[str, Media] = {m.id: m for m in media_store.load_media()}
        if config.cluster.enabled:   # definitions from Redis name another node's copy of the file
            self._confs = {cid: self._local_music(c) for cid, c in self._confs.items()}

    def _room_conference(self, room: RoomConfig, started: datetime) -> Conference:
        return Conference(
            id=room_conference_id(room.name),
            account_id=room.account,
            name=room.name,
            dial_in_code=room.dial_in_code or "",
            created_at=started.replace(microsecond=0),
            source="config",
            max_participants=room.max_participants,
            member_pins=room.member_pins,
            moderator_pins=room.moderator_pins,
            profile=room.profile,
            mute_on_entry=room.mute_on_entry,
            beep=room.beep,
            wait_for_moderator=room.wait_for_moderator,
            end_when_moderator_leaves=room.end_when_moderator_leaves,
            hold_music_id=room.hold_music,
            comfort_noise=room.comfort_noise,
            rate=room.rate or self.config.media.default_rate,
            codecs=tuple(room.codecs) if room.codecs else (),
            max_talkers=room.max_talkers,
        )

    def reload_rooms(self, config: Config) -> RoomChanges:
        """Reconcile config.yaml rooms with ``config`` (a reload): new rooms answer at once; changed
        settings reach a live room as a REST change does; a removed room is no longer dialable and
        its callers hear the closing prompt and get a BYE, as after an API end. Rooms that did not
        change, and their calls, are left alone. Names of the rooms in each group are returned."""
        old = self._rooms
        self.config = config
        started = self.clock()
        fresh: dict[str, Conference] = {}
        changes = RoomChanges()
        for room in config.rooms:
            cid = room_conference_id(room.name)
            conf = self._room_conference(room, started)
            current = old.get(cid)
            if current is None:
                changes.added.append(room.name)
            else:
                conf = dataclasses.replace(conf, created_at=current.created_at, status=current.status)
                if conf != current:
                    changes.changed.append(room.name)
            fresh[cid] = conf
        changes.removed = [conf.name for cid, conf in old.items() if cid not in fresh]
        self._rooms = fresh
        self._room_names = {conf.name: cid for cid, conf in fresh.items()}
        # Rebuilt whole: a removed room's code may have hidden an API conference's (config wins).
        self._codes = {c.dial_in_code: c.id for c in self._confs.values()}
        self._codes.update({c.dial_in_code: cid for cid, c in fresh.items() if c.dial_in_code})
        for name in changes.changed:
            self.live.conference_changed(fresh[room_conference_id(name)])
        for name in changes.removed:
            cid = room_conference_id(name)
            if any(p.status in ("connected", "held") for p in self.live.participants(cid)):
                self.live.end_conference(cid, "ended_via_api")
        return changes

    def conferences(self) -> builtins.list[Conference]:
        """Every conference (config rooms and API ones, ended included) with its current status."""
        return [self._view(c) for c in (*self._rooms.values(), *self._confs.values())]

    # -- reads --------------------------------------------------------------------------------

    def _raw(self, conf_id: str) -> Conference | None:
        return self._rooms.get(conf_id) or self._confs.get(conf_id)

    def _view(self, conf: Conference) -> Conference:
        """Apply ``expires_at`` right away, even if the periodic sweep has not run yet."""
        status = conf.effective_status(self.clock())
        return conf if status == conf.status else dataclasses.replace(conf, status=status)

    def get(self, conf_id: str) -> Conference | None:
        conf = self._raw(conf_id)
        return None if conf is None else self._view(conf)

    def get_owned(self, account_id: str, conf_id: str) -> Conference:
        """The conference if ``account_id`` owns it; otherwise 404, never revealing that it exists."""
        conf = self.get(conf_id)
        if conf is None or conf.account_id is None or conf.account_id != account_id:
            raise not_found()
        return conf

    def list(self, account_id: str) -> list[Conference]:
        """Every conference of the account (config rooms first, then oldest first)."""
        mine = [c for c in self._rooms.values() if c.account_id == account_id]
        mine.sort(key=lambda c: c.id)
        api = [c for c in self._confs.values() if c.account_id == account_id]
        api.sort(key=lambda c: c.created_at)  # stable: ties keep creation (insertion) order
        return [self._view(c) for c in mine + api]

    def open_count(self, account_id: str) -> int:
        now = self.clock()
        return sum(
            1 for c in self._confs.values() if c.account_id == account_id and c.effective_status(now) in OPEN_STATUSES
        )

    def resolve_dial(self, user_part: str) -> Conference | None:
        """Route a SIP call: a conference id, a config room name or a numeric dial-in code.

        None for unknown, ended or expired conferences (the SIP side answers 404).
        """
        cid = user_part if self._raw(user_part) else self._room_names.get(user_part) or self._codes.get(user_part)
        if cid is None:
            return None
        conf = self.get(cid)
        if conf is None or conf.status not in OPEN_STATUSES:
            return None
        return conf

    def absorb(self, conf: Conference) -> bool:
        """Cluster mode: a conference as another node stored it (``P conf-changes``) becomes ours.
        True when its settings (more than its status) changed, so a live part here applies them."""
        if conf.id in self._rooms:
            return False        # config.yaml rooms are each node's own
        conf = self._local_music(conf)
        old = self._confs.get(conf.id)
        if old is not None and self._codes.get(old.dial_in_code) == conf.id:
            del self._codes[old.dial_in_code]
        self._confs[conf.id] = conf
        self._codes[conf.dial_in_code] = conf.id
        return old is None or dataclasses.replace(old, status=conf.status) != conf

    def _local_music(self, conf: Conference) -> Conference:
        """``hold_music_path`` pointing at this node's copy of the uploaded file."""
        if conf.hold_music_id is None or conf.account_id is None:
            return conf
        path = self.media_path(conf.account_id, conf.hold_music_id)
        return conf if path in (None, conf.hold_music_path) else dataclasses.replace(conf, hold_music_path=path)

    def absorb_media(self, media_id: str, media: Media | None) -> Media | None:
        """Cluster mode: media uploaded (``media``) or deleted (None) through another node; returns
        what was known before (the caller removes a deleted one's file)."""
        old = self._media.pop(media_id, None)
        if media is not None:
            self._media[media_id] = media
        return old

    # -- writes -------------------------------------------------------------------------------

    def _save(self, conf: Conference) -> Conference:
        self._confs[conf.id] = conf
        self._codes[conf.dial_in_code] = conf.id
        self.store.put(conf)
        return conf

    def _new_id(self) -> str:
        while True:
            cid = f"conf_{self._rng.getrandbits(64):016x}"
            if self._raw(cid) is None:
                return cid

    def _new_code(self) -> str:
        lo = 10 ** (CODE_DIGITS - 1)
        while True:
            code = str(self._rng.randrange(lo, lo * 10))
            if code not in self._codes and code not in self._room_names:
                return code

    @staticmethod
    def _expires(created_at: datetime, scheduled_for: datetime | None, duration_minutes: int | None) -> datetime:
        base = scheduled_for or created_at
        return base + (timedelta(minutes=duration_minutes) if duration_minutes else DEFAULT_LIFETIME)

    def create(self, account_id: str, fields: Mapping[str, object], *, name_required: bool = True) -> Conference:
        """Validate ``fields`` (any accepted API field names) and create a conference."""
        now = self.clock().replace(microsecond=0)
        changes = parse_settings(fields, now=now, creating=True, name_required=name_required)
        self._check_destinations(changes)
        conf = Conference(
            id=self._new_id(),
            account_id=account_id,
            name="",
            dial_in_code=self._new_code(),
            created_at=now,
            updated_at=now,
            rate=self.config.media.default_rate,
        )
        changes.update(self._hold_music(account_id, changes))
        conf = dataclasses.replace(conf, **changes)  # type: ignore[arg-type]
        check_pins(conf.member_pins, conf.moderator_pins)
        if self.open_count(account_id) >= MAX_OPEN_PER_ACCOUNT:
            raise ControlError(
                409, "too_many_conferences", f"at most {MAX_OPEN_PER_ACCOUNT} active conferences per account"
            )
        conf = dataclasses.replace(
            conf, expires_at=self._expires(now, conf.scheduled_for, conf.duration_minutes)
        )
        saved = self._save(conf)
        if self.bus is not None:
            self.bus.publish(ConferenceCreated(saved.id, conference_name=saved.name))
        return saved

    def _check_destinations(self, changes: Mapping[str, object]) -> None:
        """Webhook URLs must be ones the bridge may call (no private or link-local targets)."""
        for attr, field in DESTINATION_FIELDS.items():
            url = changes.get(attr)
            if isinstance(url, str):
                validate_url(field, url, self._url_policy)

    def update(self, account_id: str, conf_id: str, fields: Mapping[str, object]) -> Conference:
        """Change settings; only fields present in ``fields`` change. New settings apply to new joins."""
        conf = self.get_owned(account_id, conf_id)
        if conf.read_only:
            raise READ_ONLY
        if conf.status not in OPEN_STATUSES:
            raise ControlError(409, "conference_ended", f"conference is {conf.status} and can no longer be changed")
        now = self.clock().replace(microsecond=0)
        changes = parse_settings(
            fields, now=now, creating=False, current_beep=conf.beep, current_member_pins=conf.member_pins
        )
        self._check_destinations(changes)
        changes.update(self._hold_music(account_id, changes))
        new = dataclasses.replace(conf, updated_at=now, **changes)  # type: ignore[arg-type]
        check_pins(new.member_pins, new.moderator_pins)
        if "scheduled_for" in changes or "duration_minutes" in changes:
            new = dataclasses.replace(
                new, expires_at=self._expires(new.created_at, new.scheduled_for, new.duration_minutes)
            )
        saved = self._save(new)
        self.live.conference_changed(saved)
        return saved

    def delete(self, account_id: str, conf_id: str) -> Conference:
        """End the conference (callers get BYE); it stays listed as ``ended``. Idempotent."""
        conf = self.get_owned(account_id, conf_id)
        if conf.read_only:
            raise READ_ONLY
        return self.end(conf_id) or conf

    def end(self, conf_id: str, status: str = "ended") -> Conference | None:
        """End an open API conference and its calls; None if it is a config room or already over."""
        conf = self._confs.get(conf_id)
        if conf is None or conf.status not in OPEN_STATUSES:
            return None
        now = self.clock().replace(microsecond=0)
        if conf.effective_status(now) == "expired":
            status = "expired"
        ended = dataclasses.replace(conf, status=status, ended_at=now, updated_at=now)  # type: ignore[arg-type]
        self._save(ended)
        self.live.end_conference(conf_id, "time_exceeded" if status == "expired" else "ended_via_api")
        return ended

    def on_event(self, event: DomainEvent) -> None:
        """``status`` follows the live conference: someone joined, the last one left."""
        if isinstance(event, ParticipantJoined):
            self.mark_active(event.conference_id)
        elif isinstance(event, ConferenceEnded):
            self.mark_empty(event.conference_id)

    def mark_active(self, conf_id: str) -> None:
        """Someone is in: ``created``/``empty`` -> ``active``."""
        self._set_live_status(conf_id, ("created", "empty"), "active")

    def mark_empty(self, conf_id: str) -> None:
        """The last caller left: ``active`` -> ``empty``."""
        self._set_live_status(conf_id, ("active",), "empty")

    def _set_live_status(self, conf_id: str, before: tuple[str, ...], after: str) -> None:
        conf = self._raw(conf_id)
        if conf is None or conf.status not in before or not conf.joinable(self.clock()):
            return
        changed = dataclasses.replace(conf, status=after)  # type: ignore[arg-type]
        if conf.read_only:
            self._rooms[conf_id] = changed  # config rooms are not persisted
        else:
            self._save(changed)

    def expire_due(self, now: datetime | None = None) -> builtins.list[Conference]:
        """Mark open conferences whose ``expires_at`` has passed as ``expired``; returns them.

        The app calls this periodically and ends the calls still in the returned conferences.
        """
        now = now if now is not None else self.clock()
        due = [c for c in self._confs.values() if c.status in OPEN_STATUSES and c.effective_status(now) == "expired"]
        out = []
        for conf in due:
            stamp = now.replace(microsecond=0)
            out.append(self._save(dataclasses.replace(conf, status="expired", ended_at=stamp, updated_at=stamp)))
        return out

    def _hold_music(self, account_id: str, changes: Mapping[str, object]) -> dict[str, object]:
        """``hold_music_id``/``hold_media_name`` must name this account's media; resolve it to its file."""
        if "hold_music_id" not in changes:
            return {}
        ref = changes["hold_music_id"]
        if ref is None:
            return {"hold_music_path": None}
        path = self.media_path(account_id, str(ref))
        if path is None:
            raise ControlError(400, "invalid_hold_music_id", f"no such media: {ref}")
        return {"hold_music_path": path}

    # -- media (uploaded audio; the adapter stores the file, this keeps the metadata) -----------

    def media_dir(self) -> str:
        """Where uploaded files live: ``<data_dir>/media`` (absolute)."""
        return os.path.abspath(os.path.join(self.config.data_dir, "media"))

    def find_media(self, account_id: str, ref: str) -> Media | None:
        """The account's media named by id or, failing that, by ``media_name``."""
        media = self._media.get(ref)
        if media is not None:
            return media if media.account_id == account_id else None
        return next((m for m in self._media.values() if m.account_id == account_id and m.media_name == ref), None)

    def get_media(self, account_id: str, ref: str) -> Media:
        media = self.find_media(account_id, ref)
        if media is None:
            raise not_found(MEDIA_NOT_FOUND)
        return media

    def media_path(self, account_id: str, ref: str) -> str | None:
        """Absolute path of the file of the account's media ``ref`` (id or media_name); None if unknown."""
        media = self.find_media(account_id, ref)
        return None if media is None else os.path.join(self.media_dir(), media.filename)

    def list_media(self, account_id: str) -> builtins.list[Media]:
        """The account's media, oldest first."""
        return sorted((m for m in self._media.values() if m.account_id == account_id), key=lambda m: m.created_at)

    def check_media_upload(self, account_id: str, media_name: object) -> str | None:
        """Validate an upload before its bytes are read: the name (400/409) and the account's quota."""
        name = parse_media_name(media_name)
        if name is not None and self.find_media(account_id, name) is not None:
            raise ControlError(409, "media_name_taken", f"media_name {name!r} is already used by this account")
        if sum(1 for m in self._media.values() if m.account_id == account_id) >= MAX_MEDIA_PER_ACCOUNT:
            raise ControlError(409, "too_many_media", f"at most {MAX_MEDIA_PER_ACCOUNT} media files per account")
        return name

    def new_media_id(self) -> str:
        while True:
            mid = f"media_{self._rng.getrandbits(64):016x}"
            if mid not in self._media:
                return mid

    def add_media(
        self, account_id: str, media_id: str, media_name: str | None, content_type: str, size: int,
        duration_s: float, filename: str,
    ) -> Media:
        """Record an upload whose file is already in ``media_dir()``; checks again (another upload
        with the same name may have finished while this one was decoding)."""
        name = self.check_media_upload(account_id, media_name)
        media = Media(
            id=media_id, account_id=account_id, media_name=name, content_type=content_type, size=size,
            duration_s=round(duration_s, 3), created_at=self.clock().replace(microsecond=0), filename=filename,
        )
        self._media[media.id] = media
        self.media_store.put_media(media)
        return media

    def delete_media(self, account_id: str, ref: str) -> Media:
        """Forget the media (the adapter removes the file); 409 while an open conference plays it."""
        media = self.get_media(account_id, ref)
        path = os.path.join(self.media_dir(), media.filename)
        now = self.clock()
        users = [c.id for c in self._confs.values() if c.hold_music_path == path and c.joinable(now)]
        if users:
            raise ControlError(409, "media_in_use", f"media is the hold music of {', '.join(sorted(users)[:5])}")
        del self._media[media.id]
        self.media_store.delete_media(media.id)
        return media

    # -- participants -------------------------------------------------------------------------

    def participants(self, account_id: str, conf_id: str) -> builtins.list[ParticipantView]:
        conf = self.get_owned(account_id, conf_id)
        return list(self.live.participants(conf.id))

    def act(self, account_id: str, conf_id: str, participant_id: str, action: object) -> ParticipantView:
        """Mute/unmute/deaf/undeaf/kick a live participant; takes effect at the next media tick.

        Returns the participant as it will be once the action is applied.
        """
        conf = self.get_owned(account_id, conf_id)
        verb: Action = parse_action(action)  # type: ignore[assignment]
        found = next((p for p in self.live.participants(conf.id) if p.participant_id == participant_id), None)
        if found is None or not self.live.act(conf.id, participant_id, verb):
            raise ControlError(404, "participant_not_found", "participant not found in this conference")
        if verb in ("mute", "unmute"):
            return dataclasses.replace(found, muted=verb == "mute")
        if verb in ("deaf", "undeaf"):
            return dataclasses.replace(found, deaf=verb == "deaf")
        return found

    def hold(self, account_id: str, conf_id: str, participant_id: str, on_hold: bool,
             music: str | None = None) -> ParticipantView:
        """Put a live participant on hold over the API, or take them off it (Telnyx ``hold``/``unhold``).

        ``music``: an http(s) URL, or the id or ``media_name`` of the account's uploaded media;
        None plays the conference's hold music.
        """
        conf = self.get_owned(account_id, conf_id)
        if music is not None and not music.startswith(("http://", "https://")):
            path = self.media_path(account_id, music)
            if path is None:
                raise ControlError(400, "invalid_media_name", f"no such media: {music}")
            music = path
        found = next((p for p in self.live.participants(conf.id) if p.participant_id == participant_id), None)
        if found is None or found.status not in ("connected", "held"):
            raise ControlError(404, "participant_not_found", "participant not found in this conference")
        if not self.live.hold(conf.id, participant_id, on_hold, music):
            raise ControlError(404, "participant_not_found", "participant not found in this conference")
        return dataclasses.replace(found, on_hold=on_hold, status="held" if on_hold else "connected")

    def dial_out(self, account_id: str, conf_id: str, body: Mapping[str, object]) -> ParticipantView:
        """Add a participant by calling them: validated, rate-limited per account, then dialled;
        the answer comes at once with status ``dialing`` (the listing follows the call)."""
        conf = self.get_owned(account_id, conf_id)
        spec = parse_dial_out(body)
        if conf.status not in OPEN_STATUSES:
            raise ControlError(409, "conference_ended", f"conference is {conf.status}")
        role = str(spec.get("role", "listener"))
        sms = self._pin_text(conf, role) if spec.get("send_pin_via_sms") else None
        now = self.clock().timestamp()
        recent = self._adds.setdefault(account_id, deque())
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        if len(recent) >= self.config.dial_out.adds_per_second:
            raise ControlError(429, "rate_limited", f"at most {self.config.dial_out.adds_per_second} "
                               "participants may be added per second; retry in a second")
        recent.append(now)
        return self.live.dial_out(conf, str(spec["phone_number"]), str(spec.get("name", "")), role,
                                  bool(spec.get("muted", False)), sms)

    def _pin_text(self, conf: Conference, role: str) -> str:
        """The SMS a dialled participant gets with ``send_pin_via_sms``: the PIN of their role."""
        if self.config.dial_out.sms_gateway_url is None:
            raise ControlError(400, "sms_not_configured", "send_pin_via_sms needs an SMS gateway "
                               "(config.yaml: dial_out.sms_gateway_url); none is configured")
        hosts = role in ("presenter", "operator") and conf.moderator_pins
        pins = conf.moderator_pins if hosts else conf.member_pins
        if not pins:
            raise ControlError(400, "no_pin", "send_pin_via_sms: this conference has no PIN to send")
        return f"{conf.name}: your PIN is {pins[0]} (dial-in code {conf.dial_in_code})."
