"""FreeClimb's ``conferenceStatus`` transitions, derived from domain events.

Exactly the transitions FreeClimb documents for ``statusCallbackUrl``:

- the conference is created → ``empty``
- the first participant joins → ``populated``
- the first participant who starts the conference joins → ``inProgress`` (our
  ``ConferenceStarted``, or a ``ParticipantJoined`` that is not waiting for a host; when the
  first participant starts it, ``populated`` is reported and then ``inProgress``)
- the last participant leaves → ``empty``
- the conference is terminated while populated or in progress → ``empty``, then ``terminated``
  (already empty → ``terminated`` only)

"Terminated" means the conference itself is over (deleted over the API, expired, or ended for
``host_left``/``time_exceeded``/``ended_via_api``); a room that closes because everyone left
while the conference stays open for later callers only reports ``empty``. Repeated or
out-of-order events never report the same status twice in a row, and nothing follows
``terminated``. State is in memory per conference (a few bytes; ``forget`` drops it); after a
restart a conference is re-learnt from its next event.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..control.events import (
    ConferenceCreated,
    ConferenceEnded,
    ConferenceStarted,
    DomainEvent,
    ParticipantJoined,
    ParticipantLeft,
)

TERMINATING_REASONS = frozenset({"host_left", "time_exceeded", "ended_via_api"})


@dataclass
class _State:
    status: str | None = None
    count: int = 0


class FreeClimbStatusTracker:
    def __init__(self) -> None:
        self._confs: dict[str, _State] = {}

    def observe(self, event: DomainEvent, conference_open: bool = True) -> list[str]:
        """The statuses to report for ``event``, in order (usually none or one).

        ``conference_open``: whether the conference definition is still open (for ``ConferenceEnded``).
        """
        state = self._confs.setdefault(event.conference_id, _State())
        out: list[str] = []

        def to(status: str) -> None:
            if state.status != status:
                state.status = status
                out.append(status)

        if state.status == "terminated":
            return out  # over for good; late events change nothing
        if isinstance(event, ConferenceCreated):
            if state.status is None:
                to("empty")
        elif isinstance(event, ParticipantJoined):
            if state.status is None:
                to("empty")  # first seen (a config room, or after a restart)
            state.count += 1
            if state.status == "empty":
                to("populated")
            if not event.waiting and state.status == "populated":
                to("inProgress")
        elif isinstance(event, ConferenceStarted):
            if state.status == "populated":
                to("inProgress")
        elif isinstance(event, ParticipantLeft):
            state.count = max(0, state.count - 1)
            if state.count == 0 and state.status in ("populated", "inProgress"):
                to("empty")
        elif isinstance(event, ConferenceEnded):
            terminated = not conference_open or event.reason in TERMINATING_REASONS
            if state.status in ("populated", "inProgress"):
                to("empty")
                state.count = 0
            if terminated:
                to("terminated")  # kept: a second ConferenceEnded reports nothing
        return out

    def status(self, conference_id: str) -> str | None:
        """The last status reported for the conference (None: none yet)."""
        state = self._confs.get(conference_id)
        return None if state is None else state.status

    def forget(self, conference_id: str) -> None:
        self._confs.pop(conference_id, None)
