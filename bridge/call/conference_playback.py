"""Telnyx ``play``/``stop``: audio played into a whole conference, over the mix.

One playback per conference at a time (a new ``play`` replaces the current one). It is a room
source, so every participant who hears the mix hears it and recordings of the mix contain it;
``conference.playback.started``/``ended`` follow (ended also when it runs out by itself).
Audio is decoded off the media clock before it gets here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from bridge_codecs.base import Pcm

from bridge.control import events as ev
from bridge.media.playback import DecodedAudio, FilePlayback, PromptSequence
from bridge.media.ports import AudioSource
from bridge.media.room import Room


class _Reported:
    """An audio source that says once when it has run out."""

    def __init__(self, inner: AudioSource, on_end: Callable[[], None]) -> None:
        self.inner = inner
        self.on_end = on_end
        self.ended = False

    def read(self, samples: int, rate: int) -> Pcm | None:
        frame = self.inner.read(samples, rate)
        if frame is None and not self.ended:
            self.ended = True
            self.on_end()
        return frame


class ConferencePlayback:
    def __init__(self, publish: Callable[[ev.DomainEvent], object]) -> None:
        self._publish = publish
        self.current: dict[str, tuple[str, str]] = {}     # conference -> (room source id, media)

    def play(self, conf_id: str, room: Room, audio: DecodedAudio, media: str, loops: int | None) -> None:
        """``loops``: how many times (None: until stopped)."""
        self.stop(conf_id, room)
        inner: AudioSource = (FilePlayback(audio, loop=True) if loops is None
                              else PromptSequence([FilePlayback(audio) for _ in range(loops)]))
        sid = "api-play-" + secrets.token_hex(4)
        room.add_room_source(sid, _Reported(inner, lambda: self._ended(conf_id, sid)))
        self.current[conf_id] = (sid, media)
        self._publish(ev.PlaybackStarted(conf_id, participant_id=None, media=media))

    def stop(self, conf_id: str, room: Room) -> bool:
        playing = self.current.pop(conf_id, None)
        if playing is None:
            return False
        room.remove_room_source(playing[0])
        self._publish(ev.PlaybackEnded(conf_id, participant_id=None, media=playing[1]))
        return True

    def _ended(self, conf_id: str, sid: str) -> None:
        playing = self.current.get(conf_id)
        if playing is not None and playing[0] == sid:
            del self.current[conf_id]
            self._publish(ev.PlaybackEnded(conf_id, participant_id=None, media=playing[1]))
