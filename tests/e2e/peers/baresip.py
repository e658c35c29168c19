"""A baresip 1.0 softphone driven over its ctrl_tcp JSON socket.

One ``Baresip`` is one participant: its own config dir, ports, mic file (aufile)
and recordings (sndfile dumps of what it decoded). Facts this relies on are in the
docstring of this package (tests/e2e/peers/__init__.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from . import audio
from .netstring import NetstringDecoder, encode
from .ports import HOST, BaresipPorts

BARESIP = os.environ.get("BARESIP_BIN", "baresip")
MODULE_PATH = "/usr/lib/baresip/modules"

Event = dict[str, Any]


class PeerError(RuntimeError):
    """A peer did not do what the test expected; the message carries its log tail."""


def codec_wav_format(codecs: str) -> tuple[int, int]:
    """(rate, channels) the aufile source must have for the first codec in ``codecs``.

    baresip does not resample or remix its aufile source, so a mismatch plays at the
    wrong speed or not at all.
    """
    first = codecs.split(",")[0].strip().lower()
    if first.startswith("opus"):
        return 48000, 2
    if first.startswith("g722"):
        return 16000, 1
    if first.startswith("l16"):
        parts = first.split("/")
        rate = int(parts[1]) if len(parts) > 1 else 44100
        channels = int(parts[2]) if len(parts) > 2 else 1
        return rate, channels
    return 8000, 1


def codec_tone_wav(
    path: Path, freq_hz: float, codecs: str, seconds: float = 1.5, **kwargs: float
) -> Path:
    """A tone WAV in exactly the format baresip's aufile needs for ``codecs``."""
    rate, channels = codec_wav_format(codecs)
    return audio.tone_wav(path, freq_hz, seconds, rate, channels, **kwargs)


def _wav_complete(path: Path) -> bool:
    """True once libsndfile has closed the file: the RIFF size matches the file size."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
        size = path.stat().st_size
    except OSError:
        return False
    if len(head) < 12 or head[:4] != b"RIFF":
        return False
    return int.from_bytes(head[4:8], "little") + 8 == size and size > 44


class Baresip:
    """One baresip process with its own config dir under ``workdir``.

    Use as a context manager (or call ``stop()``): the process is always killed.
    """

    def __init__(
        self,
        name: str,
        workdir: Path,
        ports: BaresipPorts,
        *,
        codecs: str = "PCMU",
        mic_wav: Path | None = None,
        auto_answer: bool = False,
        mic_seconds: float = 30.0,
        extra_config: dict[str, str] | None = None,
        extra_account_params: str = "",
        extra_modules: tuple[str, ...] = (),
        aor_params: str = "",
    ) -> None:
        self.name = name
        self.dir = Path(workdir) / f"baresip-{name}"
        self.ports = ports
        self.codecs = codecs
        self.auto_answer = auto_answer
        self.rec_dir = self.dir / "rec"
        self.log_path = self.dir / "baresip.log"
        self.events: list[Event] = []
        self.responses: list[Event] = []
        self._mic_wav = mic_wav
        self._mic_seconds = mic_seconds
        self._extra_config = extra_config or {}
        self._extra_account = extra_account_params
        self._extra_modules = extra_modules      # e.g. ("srtp",): SDES SRTP, account mediaenc=srtp-mand
        self._aor_params = aor_params            # e.g. ";transport=tls": every request over TLS
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._consumed: dict[str, int] = {}  # event type -> how many wait_event returned
        self._token = 0
        self._reader_error: BaseException | None = None
        self._started_at = 0.0

    # ------------------------------------------------------------ setup

    @property
    def aor(self) -> str:
        return f"sip:{self.name}@{HOST}"

    @property
    def uri(self) -> str:
        """Where other peers reach this one directly."""
        return f"sip:{self.name}@{HOST}:{self.ports.sip}"

    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rec_dir.mkdir(exist_ok=True)
        mic = self._mic_wav
        if mic is None:
            rate, channels = codec_wav_format(self.codecs)
            mic = audio.write_wav(
                self.dir / "silence.wav", [0.0] * int(rate * self._mic_seconds), rate, channels
            )
        lines = {
            "poll_method": "epoll",
            "sip_listen": f"{HOST}:{self.ports.sip}",
            "net_interface": HOST,
            "audio_source": f"aufile,{Path(mic).resolve()}",
            "audio_player": "aubridge,nil",
            "audio_alert": "aubridge,nil",
            "rtp_ports": f"{self.ports.rtp_lo}-{self.ports.rtp_hi}",
            "rtcp_mux": "no",
            "jitter_buffer_delay": "5-10",
            "module_path": MODULE_PATH,
            "snd_path": str(self.rec_dir),
            "ctrl_tcp_listen": f"{HOST}:{self.ports.ctrl}",
        }
        lines.update(self._extra_config)
        body = [f"{k:<20}{v}" for k, v in lines.items()]
        for mod in ("g711", "g722", "opus", "aufile", "aubridge", "sndfile", "ctrl_tcp", *self._extra_modules):
            body.append(f"{'module':<20}{mod}.so")
        body += [f"{'module_tmp':<20}uuid.so", f"{'module_tmp':<20}account.so"]
        body.append(f"{'module_app':<20}menu.so")
        (self.dir / "config").write_text("\n".join(body) + "\n")
        params = f";regint=0;audio_codecs={self.codecs}"
        if self.auto_answer:
            params += ";answermode=auto"
        params += self._extra_account
        (self.dir / "accounts").write_text(f"<{self.aor}{self._aor_params}>{params}\n")
        (self.dir / "contacts").write_text("")

    def start(self, timeout: float = 5.0) -> Baresip:
        if self._proc is not None and self._proc.poll() is None:
            # A second process would orphan the first (the context manager starts it too).
            raise RuntimeError(f"{self.name}: baresip is already running")
        self._write_config()
        log = self.log_path.open("wb")
        try:
            self._proc = subprocess.Popen(
                [BARESIP, "-f", str(self.dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,  # its own group: a kill never hits the test runner
            )
        finally:
            log.close()
        self._started_at = time.monotonic()
        self._connect(timeout)
        return self

    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: OSError | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise PeerError(f"{self.name}: baresip exited with {self._proc.returncode}\n{self.log_tail()}")
            try:
                sock = socket.create_connection((HOST, self.ports.ctrl), timeout=0.5)
            except OSError as exc:
                last = exc
                time.sleep(0.05)
                continue
            sock.settimeout(None)
            self._sock = sock
            self._reader = threading.Thread(target=self._read_loop, name=f"baresip-{self.name}", daemon=True)
            self._reader.start()
            return
        raise PeerError(f"{self.name}: ctrl_tcp {self.ports.ctrl} not reachable in {timeout}s ({last})\n"
                        f"{self.log_tail()}")

    # ------------------------------------------------------------ ctrl_tcp

    def _read_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        decoder = NetstringDecoder()
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                for payload in decoder.feed(data):
                    msg = json.loads(payload)
                    msg["_t"] = time.monotonic()
                    with self._cond:
                        if msg.get("event"):
                            self.events.append(msg)
                        else:
                            self.responses.append(msg)
                        self._cond.notify_all()
        except OSError:
            pass
        except BaseException as exc:  # surfaced to the waiting test, not lost in a thread
            self._reader_error = exc
        finally:
            with self._cond:
                self._cond.notify_all()

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> Event:
        """Send one ctrl_tcp command and wait for its response (matched by token)."""
        if self._sock is None:
            raise PeerError(f"{self.name}: not started")
        with self._cond:
            self._token += 1
            token = f"t{self._token}"
        msg: dict[str, str] = {"command": command, "token": token}
        if params:
            msg["params"] = params
        self._sock.sendall(encode(json.dumps(msg).encode()))
        return self._wait(lambda: self._find_response(token), timeout, f"response to {command!r}")

    def _find_response(self, token: str) -> Event | None:
        return next((r for r in self.responses if r.get("token") == token), None)

    def _wait(self, find: Callable[[], Event | None], timeout: float, what: str) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = find()
                if found is not None:
                    return found
                if self._reader_error is not None:
                    raise PeerError(f"{self.name}: ctrl_tcp reader failed: {self._reader_error!r}")
                left = deadline - time.monotonic()
                alive = self._reader is not None and self._reader.is_alive()
                if left <= 0 or not alive:
                    why = "timed out" if alive else "ctrl_tcp closed (baresip exited?)"
                    raise PeerError(
                        f"{self.name}: {why} after {timeout}s waiting for {what}; "
                        f"events so far: {[e.get('type') for e in self.events]}\n{self.log_tail()}"
                    )
                self._cond.wait(min(left, 0.2))

    def wait_event(self, type_: str, timeout: float = 10.0) -> Event:
        """The next ``type_`` event not yet returned by an earlier wait_event call.

        Events are queued from the moment the socket connects, so waiting after the
        event already happened returns at once.
        """

        def find() -> Event | None:
            seen = self._consumed.get(type_, 0)
            matches = [e for e in self.events if e.get("type") == type_]
            if len(matches) > seen:
                self._consumed[type_] = seen + 1
                return matches[seen]
            return None

        return self._wait(find, timeout, f"event {type_}")

    def event_types(self) -> list[str]:
        with self._cond:
            return [str(e.get("type")) for e in self.events]

    # ------------------------------------------------------------ call control

    def _ok(self, command: str, params: str = "", timeout: float = 5.0) -> Event:
        resp = self.command(command, params, timeout)
        if not resp.get("ok", False):
            raise PeerError(f"{self.name}: {command} {params!r} failed: {resp}\n{self.log_tail()}")
        return resp

    def dial(self, uri: str) -> Event:
        return self._ok("dial", uri)

    def accept(self) -> Event:
        return self._ok("accept")

    def hangup(self) -> Event:
        return self._ok("hangup")

    def hold(self) -> Event:
        return self._ok("hold")

    def resume(self) -> Event:
        return self._ok("resume")

    def send_dtmf(self, digits: str, gap: float = 0.25) -> None:
        """RFC 4733 digits, one ``sndcode`` per digit (baresip sends one key at a time)."""
        for i, digit in enumerate(digits):
            if i:
                time.sleep(gap)
            self._ok("sndcode", digit)

    def quit(self) -> None:
        try:
            self.command("quit", timeout=2.0)
        except (PeerError, OSError):
            pass  # it may exit before answering

    # ------------------------------------------------------------ recordings

    def recordings(self, kind: str = "dec") -> list[Path]:
        """Dump files of this instance, oldest first (``dec`` = heard, ``enc`` = sent)."""
        files = list(self.rec_dir.glob(f"dump-*-{kind}.wav"))
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    def recording(self, kind: str = "dec", timeout: float = 5.0, *, newer_than: float = 0.0) -> Path:
        """The newest ``*-dec.wav`` once libsndfile has finalised its header.

        baresip closes the dump when the call's audio stream is freed, which happens
        by the time CALL_CLOSED is reported; before that the RIFF sizes are zero
        placeholders. ``newer_than`` (a ``time.time()`` value) skips dumps of earlier
        calls. Names have 1 s resolution: two calls within one second share a file.
        """
        deadline = time.monotonic() + timeout
        while True:
            files = [p for p in self.recordings(kind) if p.stat().st_mtime >= newer_than]
            if files and _wav_complete(files[-1]):
                return files[-1]
            if time.monotonic() >= deadline:
                state = f"newest {files[-1].name} not finalised" if files else "no dump file"
                raise PeerError(f"{self.name}: {state} in {self.rec_dir} after {timeout}s\n{self.log_tail()}")
            time.sleep(0.05)

    def heard(self, timeout: float = 5.0) -> tuple[audio.Samples, int]:
        """Samples (float mono) and rate of what this peer decoded in its last call."""
        return audio.read_wav(self.recording("dec", timeout))

    # ------------------------------------------------------------ teardown

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"[{self.name}: no log]"
        tail = text.splitlines()[-lines:]
        return f"--- {self.name} log tail ({self.log_path}) ---\n" + "\n".join(tail)

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def stop(self, timeout: float = 3.0) -> None:
        """Quit politely, then SIGTERM, then SIGKILL; always closes the socket."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if self._sock is not None:
                self.quit()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGTERM)
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    proc.wait(2.0)
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if self._reader is not None:
            self._reader.join(1.0)

    def crash(self) -> None:
        """SIGKILL: the phone vanishes without a BYE (a dead battery, a lost network)."""
        if self._proc is not None and self._proc.poll() is None:
            self._signal(signal.SIGKILL)
            self._proc.wait(2.0)

    def _signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)  # the group we created in start()
        except ProcessLookupError:
            pass

    def __enter__(self) -> Baresip:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
