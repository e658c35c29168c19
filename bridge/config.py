"""Load and validate ``config.yaml`` into typed, frozen objects.

A bad value stops the bridge with a message naming the key path and what was
expected, e.g. ``rooms.0.rate: Input should be 8000, 16000 or 48000``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from bridge.config_cascade import CascadeConfig
from bridge.config_media import CodecName, FrozenModel, MediaConfig, RtpConfig
from .cluster.settings import ClusterConfig

_PIN = re.compile(r"^\d{4,6}$")
_ROOM_NAME = re.compile(r"^[A-Za-z0-9._~\-]{1,64}$")



def _ip_networks(v: tuple[str, ...]) -> tuple[str, ...]:
    for net in v:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ValueError(f"{net!r} is not an IP network such as 127.0.0.1/32 or fd00::/8") from None
    return v


# Networks a non-public destination may be in (webhooks, audio fetched by URL).
IpNetworks = Annotated[tuple[str, ...], AfterValidator(_ip_networks)]

class ConfigError(Exception):
    """The configuration file is unusable; the message says where and why."""


class TlsConfig(FrozenModel):
    port: int = Field(default=5061, ge=1, le=65535)
    cert: str            # PEM certificate chain
    key: str             # PEM private key


class SipConfig(FrozenModel):
    host: str = "0.0.0.0"
    port: int = Field(default=5060, ge=1, le=65535)
    transports: tuple[Literal["udp", "tcp"], ...] = ("udp", "tcp")
    # Host written into Contact/SDP. None: the address the caller reached us at
    # (Request-URI host when it is an IP literal), else the bound address.
    advertise_host: str | None = None
    # User part of the access number that asks for a numeric dial-in code.
    access_user: str = "conference"
    user_agent: str = "tutti-bridge"
    # Ring (180) for this long before answering: callers hear ringback, and a
    # caller who hangs up in that time never reaches the room (CANCEL -> 487).
    answer_delay_ms: int = Field(default=0, ge=0, le=30000)
    # SRTP with SDES keys (README "Security") for calls in: off (RTP/SAVP offers get 488),
    # optional (SRTP when the offer has a=crypto), required (a plain offer gets 488).
    srtp: Literal["off", "optional", "required"] = "off"
    # SIP over TLS listener (README "Security"): off unless cert and key are given.
    tls: "TlsConfig | None" = None
    # Slowloris bound: a TCP/TLS connection that completes no SIP message (or no TLS
    # handshake) for this long is closed.
    tcp_idle_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    # At most this many SIP TCP/TLS connections at once; further ones are closed at accept.
    max_tcp_connections: int = Field(default=1000, ge=1, le=100000)


class HttpTlsConfig(FrozenModel):
    cert: str            # PEM certificate chain (may be the same files as sip.tls)
    key: str             # PEM private key


class HttpConfig(FrozenModel):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    # Base URL used in join_url and recording links; None: http(s)://<host the client used>.
    public_url: str | None = None
    tls: HttpTlsConfig | None = None     # HTTPS on http.port instead of plain HTTP
    # Slowloris bounds (README "Security"); 0 turns a bound off. The body deadline grows by a
    # second per body_min_rate bytes received, so honest slow uploads finish.
    header_timeout_s: float = Field(default=10.0, ge=0, le=3600)
    body_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    body_min_rate: int = Field(default=1000, ge=0, le=10**9)
    keepalive_timeout_s: float = Field(default=15.0, gt=0, le=3600)
    max_connections: int = Field(default=1000, ge=0, le=10**6)
    max_connections_per_source: int = Field(default=100, ge=0, le=10**6)


class WebhookAccountConfig(FrozenModel):
    """Where one account's events go by default (the Telnyx form), and its FreeClimb secret."""

    account: str
    # Account-wide default for Telnyx-form webhooks; a conference's own ``webhook_url`` overrides it.
    url: str | None = None
    failover_url: str | None = None
    # Name of an environment variable holding the FreeClimb signing secret (``sigsec_...``);
    # unset: one is generated on first start and kept in the data directory.
    freeclimb_signing_secret_env: str | None = None


class MediaFetchConfig(FrozenModel):
    """Audio the bridge downloads for an API request (hold_audio_url, hold/play audio_url)."""

    # Largest file fetched, and how long a fetch may take in all.
    max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, le=500 * 1024 * 1024)
    timeout_s: float = Field(default=15.0, gt=0, le=120)
    # As for webhooks: non-public addresses are refused unless in one of these networks.
    allow_networks: IpNetworks = ()


class WebhooksConfig(FrozenModel):
    """Outbound webhooks and status callbacks (README "Webhooks")."""

    enabled: bool = True
    timeout_s: float = Field(default=10.0, gt=0, le=60)
    # Retries until this long after the event, then the delivery is dead (kept, redeliverable).
    retry_horizon_hours: float = Field(default=24.0, gt=0, le=24 * 14)
    initial_backoff_s: float = Field(default=2.0, gt=0, le=3600)
    max_backoff_s: float = Field(default=900.0, gt=0, le=24 * 3600)
    # Each delay is shortened by up to this fraction at random (0: no jitter).
    jitter: float = Field(default=0.5, ge=0, le=1)
    # Requests in flight at once to one destination (scheme://host:port) and in total.
    max_in_flight_per_destination: int = Field(default=4, ge=1, le=64)
    max_in_flight: int = Field(default=64, ge=1, le=1024)
    # Undelivered deliveries kept at most; past it new ones are dead-lettered at once.
    max_pending: int = Field(default=100_000, ge=100, le=10_000_000)
    # Response bodies are read up to this many bytes, then dropped.
    max_response_bytes: int = Field(default=16 * 1024, ge=0, le=1024 * 1024)
    # Delivered and dead deliveries are purged after this long.
    retention_hours: float = Field(default=72.0, gt=0, le=24 * 365)
    # Destinations on loopback, private, link-local (cloud metadata) and other non-public
    # addresses are refused unless they fall in one of these networks, e.g. "127.0.0.1/32".
    allow_networks: IpNetworks = ()
    stats_interval_s: float = Field(default=60.0, gt=0, le=86400)
    accounts: tuple[WebhookAccountConfig, ...] = ()

    @model_validator(mode="after")
    def _checks(self) -> "WebhooksConfig":
        from .control.errors import ControlError
        from .webhooks.urls import AddressPolicy, validate_url

        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("max_backoff_s must be at least initial_backoff_s")
        policy = AddressPolicy.from_config(self.allow_networks)
        for acct in self.accounts:
            for name, url in (("url", acct.url), ("failover_url", acct.failover_url)):
                if url is None:
                    continue
                try:
                    validate_url(name, url, policy)
                except ControlError as err:
                    raise ValueError(f"accounts[{acct.account}].{err.message}") from None
        return self


class TrunkConfig(FrozenModel):
    """A SIP trunk the bridge dials out through (README "Dial-out")."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    # An IP address: the media clock never waits for name resolution.
    host: str
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp"] = "udp"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None     # or the password from this environment variable
    from_user: str = Field(default="conference", max_length=64)
    from_display: str | None = Field(default=None, max_length=64)
    # How a phone number becomes the Request-URI ({number}, {host}, {port}).
    uri_template: str = "sip:{number}@{host}:{port}"
    max_calls: int = Field(default=100, ge=1, le=10000)
    calls_per_second: float = Field(default=10.0, gt=0, le=1000)

    @field_validator("host")
    @classmethod
    def _ip(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(f"{v!r} is not an IP address (trunks are named by address)") from None
        return v

    @field_validator("uri_template")
    @classmethod
    def _template(cls, v: str) -> str:
        if "{number}" not in v or not v.startswith("sip:"):
            raise ValueError("must be a sip: URI containing {number}")
        try:
            v.format(number="1", host="h", port=1)
        except (KeyError, IndexError, ValueError):
            raise ValueError("may only use {number}, {host} and {port}") from None
        return v

    def credentials(self) -> tuple[str, str] | None:
        password = os.environ.get(self.password_env, "") if self.password_env else (self.password or "")
        return (self.username, password) if self.username else None


class DialOutConfig(FrozenModel):
    default_trunk: str | None = None    # used when the account names none
    # Our no-answer timer after the INVITE (a request may ask for 5-600 s).
    no_answer_timeout_s: float = Field(default=60.0, ge=5, le=600)
    # Participants added by dialling, per account per second (the Audian seed's limit).
    adds_per_second: int = Field(default=10, ge=1, le=1000)
    # ``send_pin_via_sms``: the bridge POSTs {"to": number, "text": ...} (JSON) to this URL,
    # with ``Authorization: Bearer <token>`` when the named environment variable holds one.
    sms_gateway_url: str | None = Field(default=None, pattern=r"^https?://")
    sms_gateway_token_env: str | None = None


class AccountConfig(FrozenModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    name: str = ""
    tokens: tuple[str, ...] = ()
    # Name of an environment variable that holds one more token (keeps secrets out of the file).
    token_env: str | None = None
    default_trunk: str | None = None    # the trunk this account's dial-outs use

    def all_tokens(self) -> tuple[str, ...]:
        extra = os.environ.get(self.token_env, "") if self.token_env else ""
        return self.tokens + ((extra,) if extra else ())


class AdminConfig(FrozenModel):
    """Operator tokens: ``POST /v2/admin/reload``. Account tokens never grant admin routes."""

    tokens: tuple[str, ...] = ()
    # Name of an environment variable that holds one more admin token.
    token_env: str | None = None

    def all_tokens(self) -> tuple[str, ...]:
        extra = os.environ.get(self.token_env, "") if self.token_env else ""
        return self.tokens + ((extra,) if extra else ())


class RoomConfig(FrozenModel):
    name: str
    dial_in_code: str | None = None
    account: str | None = None
    rate: Literal[8000, 16000, 48000] | None = None
    codecs: tuple[CodecName, ...] | None = None
    max_participants: int = Field(default=100, ge=1, le=1000)
    member_pins: tuple[str, ...] = ()
    moderator_pins: tuple[str, ...] = ()
    profile: Literal["default", "large", "webinar"] = "default"
    mute_on_entry: bool = False
    beep: Literal["always", "never", "on_enter", "on_exit"] = "always"
    wait_for_moderator: bool = False
    end_when_moderator_leaves: bool = False
    hold_music: str | None = None
    comfort_noise: bool = False
    max_talkers: int | None = Field(default=None, ge=0, le=1000)
    srtp: Literal["off", "optional", "required"] | None = None   # None: sip.srtp (README "Security")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _ROOM_NAME.match(v):
            raise ValueError("must be 1-64 characters of letters, digits, '.', '_', '~' or '-'")
        return v

    @field_validator("dial_in_code")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d{3,12}", v):
            raise ValueError("must be 3-12 digits")
        return v

    @field_validator("member_pins", "moderator_pins")
    @classmethod
    def _pins(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pin in v:
            if not _PIN.match(pin):
                raise ValueError("PIN must be 4-6 digits")
        return v


class RecordingConfig(FrozenModel):
    """Conference recording (README "Recording")."""

    enabled: bool = True
    # Where recordings go; None: <data_dir>/recordings.
    directory: str | None = None
    # Defaults of a recording started without options (record=true, keypad *4).
    default_format: Literal["wav", "mp3", "ogg"] = "wav"
    channels: Literal["single", "dual"] = "single"
    multitrack: bool = True
    multitrack_codec: Literal["opus", "flac"] = "opus"
    pause_behavior: Literal["silence", "skip"] = "silence"
    # Prompt name everyone hears when a recording starts ("" for none).
    announcement: str = "recording_started"
    # Audio queued between the media tick and the writer before frames are dropped.
    max_queue_s: float = Field(default=5.0, gt=0, le=60)
    # Retention: finished recordings older than this are deleted (None: kept).
    retention_days: float | None = Field(default=None, gt=0)
    # ... and the oldest go while all recordings take more than this (None: no limit).
    max_disk_mb: int | None = Field(default=None, gt=0)
    # Lifetime of the signed download links in webhooks (Telnyx: 10 minutes).
    url_ttl_s: int = Field(default=600, ge=10, le=7 * 86400)


class SecurityConfig(FrozenModel):
    """Admission control and abuse limits (README "Security"). Rates are requests per second per
    source address; bursts are bucket sizes."""

    invite_rate: float = Field(default=5.0, gt=0, le=10000)
    invite_burst: float = Field(default=10.0, ge=1, le=100000)
    register_rate: float = Field(default=5.0, gt=0, le=10000)
    register_burst: float = Field(default=10.0, ge=1, le=100000)
    options_rate: float = Field(default=5.0, gt=0, le=10000)
    options_burst: float = Field(default=10.0, ge=1, le=100000)
    other_rate: float = Field(default=50.0, gt=0, le=10000)
    other_burst: float = Field(default=100.0, ge=1, le=100000)
    # Dialogs answered (or being answered) but not yet ACKed.
    max_unconfirmed_per_source: int = Field(default=5, ge=1, le=100000)
    max_unconfirmed: int = Field(default=100, ge=1, le=1000000)
    # How long our 2xx waits for its ACK before we hang up (RFC 3261 says 64*T1 = 32 s; a real
    # caller's ACK comes within a round trip, and 8 s still covers four retransmissions).
    ack_timeout_s: float = Field(default=8.0, ge=1, le=32)
    ban_after: int = Field(default=50, ge=1, le=100000)   # refusals within ban_window_s -> ban
    ban_window_s: float = Field(default=10.0, gt=0, le=3600)
    ban_s: float = Field(default=300.0, ge=0, le=86400 * 7)
    retry_after_s: int = Field(default=5, ge=1, le=3600)
    drop_scanners: bool = True          # silence for friendly-scanner, sipvicious, ... (and a ban)
    trusted_proxies: tuple[str, ...] = ()   # addresses or networks exempt from all of the above
    # Calls in progress before new INVITEs get 503; 0 = sized from the open-file limit at start.
    max_calls: int = Field(default=0, ge=0, le=1000000)
    # PIN guessing, per caller address and conference, across calls (each call allows 3 tries):
    # after pin_free_failures wrong PINs each guess waits pin_base_delay_s, doubling up to
    # pin_max_delay_s; pin_lockout_after wrong PINs lock the address out for pin_lockout_s; a right
    # PIN or pin_window_s without a wrong one clears the count.
    pin_free_failures: int = Field(default=3, ge=0, le=1000)
    pin_base_delay_s: float = Field(default=2.0, ge=0, le=3600)
    pin_max_delay_s: float = Field(default=60.0, ge=0, le=86400)
    pin_lockout_after: int = Field(default=10, ge=1, le=100000)
    pin_lockout_s: float = Field(default=900.0, ge=0, le=86400 * 7)
    pin_window_s: float = Field(default=3600.0, gt=0, le=86400 * 7)
    # API requests with a wrong token: this many from one address within the window -> 429 for block_s.
    bad_token_limit: int = Field(default=20, ge=1, le=100000)
    bad_token_window_s: float = Field(default=60.0, gt=0, le=86400)
    bad_token_block_s: float = Field(default=300.0, gt=0, le=86400)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for net in value:
            ipaddress.ip_network(net, strict=False)
        return value


class CallControlAppConfig(FrozenModel):
    """A Telnyx call-control application (README "Telnyx call control"): SIP calls to its users
    are parked under a call_control_id and announced to its webhook URL."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    account: str
    webhook_url: str
    webhook_failover_url: str | None = None
    # SIP users (or numbers) it owns: sip:<user>@bridge reaches the application.
    sip_users: tuple[str, ...] = Field(min_length=1)
    # A parked call not answered over the API in this long gets 480 and call.hangup (timeout).
    answer_timeout_s: float = Field(default=30.0, ge=1, le=600)

    @field_validator("sip_users")
    @classmethod
    def _users(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for user in v:
            if not _ROOM_NAME.match(user):
                raise ValueError(f"{user!r}: must be 1-64 characters of letters, digits, '.', '_', '~' or '-'")
        return v


class WebrtcConfig(FrozenModel):
    """Browser participants (README "Joining from a browser")."""

    enabled: bool = True
    # The address browsers reach this host at, when 1:1 NAT hides it (ICE host candidates show it).
    public_address: str | None = None
    # ICE servers handed to aiortc and to the page: "stun:host:port", "turn:host:port".
    ice_servers: tuple[str, ...] = ()
    turn_username: str | None = None
    turn_password_env: str | None = None   # the TURN password from this environment variable
    # Browser participants on this node at once (each costs a decoder thread and Opus work).
    max_participants: int = Field(default=50, ge=0, le=10000)


class SmtpConfig(FrozenModel):
    """Where e-mail invitations go out (README "Inviting by e-mail"); no host: invites are refused."""

    host: str | None = None
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password_env: str | None = None        # the SMTP password from this environment variable
    sender: str = "tutti-bridge <bridge@localhost>"
    timeout_s: float = Field(default=20.0, gt=0, le=300)
    # Invitations per account: up to ``burst`` addresses at once, refilled at ``per_hour``.
    per_hour: float = Field(default=100.0, gt=0, le=100000)
    burst: int = Field(default=20, ge=1, le=10000)
    access_number: str | None = None       # a PSTN number printed in invites (the SIP URI always is)


class Config(FrozenModel):
    sip: SipConfig = SipConfig()
    rtp: RtpConfig = RtpConfig()
    http: HttpConfig = HttpConfig()
    media: MediaConfig = MediaConfig()
    data_dir: str = "./data"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # "json": one JSON object per line with conference_id, participant_id and call_id (README "Logs").
    log_format: Literal["text", "json"] = "text"
    admin: AdminConfig = AdminConfig()
    accounts: tuple[AccountConfig, ...] = ()
    rooms: tuple[RoomConfig, ...] = ()
    webhooks: WebhooksConfig = WebhooksConfig()
    trunks: tuple[TrunkConfig, ...] = ()
    media_fetch: MediaFetchConfig = MediaFetchConfig()
    dial_out: DialOutConfig = DialOutConfig()
    security: SecurityConfig = SecurityConfig()
    call_control: tuple[CallControlAppConfig, ...] = ()
    webrtc: WebrtcConfig = WebrtcConfig()
    smtp: SmtpConfig = SmtpConfig()
    cascade: CascadeConfig = CascadeConfig()   # README "One room across nodes"
    # Several nodes sharing state in Redis (README "Running several nodes"); off by default.
    cluster: ClusterConfig = ClusterConfig()

    def trunk_for(self, account_id: str | None) -> TrunkConfig | None:
        """The trunk an account dials out through: its own, else the default, else none."""
        account = next((a for a in self.accounts if a.id == account_id), None)
        name = (account.default_trunk if account else None) or self.dial_out.default_trunk
        return next((t for t in self.trunks if t.name == name), None)
    recording: RecordingConfig = RecordingConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> "Config":
        trunk_names = [t.name for t in self.trunks]
        if len(set(trunk_names)) != len(trunk_names):
            raise ValueError("trunks: duplicate trunk name")
        for name in [self.dial_out.default_trunk, *(a.default_trunk for a in self.accounts)]:
            if name is not None and name not in trunk_names:
                raise ValueError(f"unknown trunk {name!r} (trunks: {', '.join(trunk_names) or 'none'})")
        account_ids = {a.id for a in self.accounts}
        if len(account_ids) != len(self.accounts):
            raise ValueError("accounts: duplicate account id")
        hooked = [w.account for w in self.webhooks.accounts]
        if len(set(hooked)) != len(hooked):
            raise ValueError("webhooks.accounts: duplicate account")
        for name in hooked:
            if name not in account_ids:
                raise ValueError(f"webhooks.accounts: unknown account {name!r}")
        names: set[str] = set()
        codes: set[str] = set()
        for room in self.rooms:
            if room.name in names:
                raise ValueError(f"rooms: duplicate room name {room.name!r}")
            names.add(room.name)
            if room.dial_in_code:
                if room.dial_in_code in codes:
                    raise ValueError(f"rooms: duplicate dial_in_code {room.dial_in_code!r}")
                codes.add(room.dial_in_code)
            if room.account is not None and room.account not in account_ids:
                raise ValueError(f"rooms: room {room.name!r} names unknown account {room.account!r}")
        self._check_call_control(account_ids, names | codes)
        return self

    def _check_call_control(self, account_ids: set[str], taken: set[str]) -> None:
        from .control.errors import ControlError
        from .webhooks.urls import AddressPolicy, validate_url

        policy = AddressPolicy.from_config(self.webhooks.allow_networks)
        users: set[str] = set()
        for app in self.call_control:
            if app.account not in account_ids:
                raise ValueError(f"call_control: {app.name!r} names unknown account {app.account!r}")
            for user in app.sip_users:
                if user in users or user in taken or user == self.sip.access_user:
                    raise ValueError(f"call_control: SIP user {user!r} is already a room, code or application")
                users.add(user)
            for name, url in (("webhook_url", app.webhook_url), ("webhook_failover_url", app.webhook_failover_url)):
                try:
                    if url is not None:
                        validate_url(name, url, policy)
                except ControlError as err:
                    raise ValueError(f"call_control[{app.name}].{err.message}") from None

    def with_overrides(self, **changes: object) -> "Config":
        """Apply command-line overrides such as ``sip.port`` (dotted keys), re-validating."""
        data = self.model_dump()
        for dotted, value in changes.items():
            if value is None:
                continue
            node = data
            *parents, leaf = dotted.split(".")
            for key in parents:
                node = node[key]
            node[leaf] = value
        return parse_config(data)


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{path}: {e['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def parse_config(data: object) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("invalid configuration: the top level must be a mapping")
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err)) from None


def load_config(path: str | Path) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read configuration {path}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"configuration {path} is not valid YAML: {err}") from None
    config = parse_config(data)
    # A relative data_dir is relative to the file, not to the working directory: a service
    # starts in / and an installed bridge anywhere, and each must find the same database.
    data_dir = Path(config.data_dir).expanduser()
    if not data_dir.is_absolute():
        data_dir = Path(path).absolute().parent / data_dir
    return config.model_copy(update={"data_dir": os.path.normpath(data_dir)})
