"""One participant record, whatever the connection (SIP in or out, browser, another node).

The call core owns the records and is their one source of truth for role, mute, deaf,
hold, talking and status; the room only mixes. People who left stay listed as
``disconnected`` with their times, so a conference's participant listing tells its
history, as the seed listing does (bounded per conference, oldest forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bridge.control.events import LeaveReason, ParticipantKind
from bridge.control.model import ParticipantView

Status = Literal["pending", "dialing", "connected", "held", "disconnected", "rejected"]
# Disconnected participants remembered per conference for its listing.
HISTORY_LIMIT = 500


@dataclass
class Participant:
    participant_id: str
    kind: ParticipantKind
    caller_number: str
    caller_name: str
    created_at: datetime
    conference_id: str = ""       # "" while an access-number caller has not chosen one
    role: str = "member"
    status: Status = "pending"
    muted: bool = False
    deaf: bool = False
    on_hold: bool = False
    held_by_api: bool = False     # put on hold over the API (Telnyx hold), not by the caller
    waiting: bool = False         # seated, but waiting for the host
    talking: bool = False
    joined_at: datetime | None = None
    left_at: datetime | None = None
    leave_reason: LeaveReason | None = None
    reject_reason: str | None = None   # dial-out that never got in (ParticipantRejected)

    @property
    def connected(self) -> bool:
        return self.status in ("connected", "held")

    def view(self, level_dbov: float = -127.0, frames_fec: int = 0, frames_concealed: int = 0,
             send_expected_loss: int | None = None) -> ParticipantView:
        return ParticipantView(
            participant_id=self.participant_id,
            caller_id_number=self.caller_number,
            caller_id_name=self.caller_name,
            muted=self.muted,
            deaf=self.deaf,
            on_hold=self.on_hold or self.held_by_api,
            role=self.role,
            joined_at=self.joined_at,
            talking=self.talking and self.connected,
            level_dbov=level_dbov if self.connected else -127.0,
            status=self.status,
            kind=self.kind,
            left_at=self.left_at,
            leave_reason=self.leave_reason or self.reject_reason,
            created_at=self.created_at,
            frames_fec=frames_fec if self.connected else 0,
            frames_concealed=frames_concealed if self.connected else 0,
            send_expected_loss=send_expected_loss if self.connected else None,
        )


class ParticipantBook:
    """Participants per conference: the seated ones and a bounded history of those who left."""

    def __init__(self, history_limit: int = HISTORY_LIMIT) -> None:
        self._by_conf: dict[str, OrderedDict[str, Participant]] = {}
        self._history_limit = history_limit

    def seat(self, p: Participant) -> None:
        people = self._by_conf.setdefault(p.conference_id, OrderedDict())
        people[p.participant_id] = p

    def get(self, conference_id: str, participant_id: str) -> Participant | None:
        people = self._by_conf.get(conference_id)
        return people.get(participant_id) if people is not None else None

    def listing(self, conference_id: str) -> list[Participant]:
        people = self._by_conf.get(conference_id)
        return list(people.values()) if people is not None else []

    def connected(self, conference_id: str) -> list[Participant]:
        return [p for p in self.listing(conference_id) if p.connected]

    def left(self, p: Participant) -> None:
        """``p`` is disconnected (or rejected) now: keep it listed, forgetting the oldest past the limit."""
        people = self._by_conf.get(p.conference_id)
        if people is None:
            return
        gone = [pid for pid, q in people.items() if q.status in ("disconnected", "rejected")]
        for pid in gone[: max(0, len(gone) - self._history_limit)]:
            del people[pid]

    def forget(self, conference_id: str) -> None:
        self._by_conf.pop(conference_id, None)
