"""Participant roles and what each may do (the table the README documents).

Roles come from the moderator/member PINs (and the webinar profile, which seats members
as listeners) and from the API when a participant is added by phone number (the Audian
seed's ``presenter``, ``listener``, ``operator``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["moderator", "presenter", "operator", "member", "listener"]
ROLES: tuple[Role, ...] = ("moderator", "presenter", "operator", "member", "listener")


@dataclass(frozen=True)
class Permissions:
    speak: bool          # heard by the room (a listener's microphone is never mixed)
    unmute_self: bool    # may lift their own mute from the keypad
    host: bool           # starts a wait-for-moderator conference; counts for end-with-moderator
    control: bool        # moderator keypad menu: lock, mute all, kick last
    bypass_lock: bool    # may enter a locked conference
    bypass_cap: bool     # may enter a conference at max_participants
    muted_on_entry: bool  # subject to the conference's mute_on_entry


PERMISSIONS: dict[str, Permissions] = {
    # Dialled the moderator PIN: runs the meeting.
    "moderator": Permissions(True, True, True, True, True, False, False),
    # The seed's "can control conference, mute others": a moderator by another name.
    "presenter": Permissions(True, True, True, True, True, False, False),
    # "Full control, administrator": all a moderator may, also into a full room, but never
    # the meeting's host (an operator listening in neither starts nor ends it).
    "operator": Permissions(True, True, False, True, True, True, False),
    "member": Permissions(True, True, False, False, False, False, True),
    # "Can listen only": never heard, cannot unmute.
    "listener": Permissions(False, False, False, False, False, False, True),
}


def permissions(role: str) -> Permissions:
    """A role's permissions; unknown roles get a member's (the safe, ordinary default)."""
    return PERMISSIONS.get(role, PERMISSIONS["member"])
