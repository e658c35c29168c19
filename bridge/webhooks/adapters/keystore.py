"""Per-account signing keys, generated on first start and kept in ``<data_dir>/webhook_keys.json``.

Each account gets an Ed25519 key pair (Telnyx form; the public key is served at
``GET /v2/webhooks/keys``) and a FreeClimb signing secret (``sigsec_...``), unless
``webhooks.accounts[].freeclimb_signing_secret_env`` names an environment variable holding the
secret to use. The file is written atomically with mode 0600; back it up with the database.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ...config import Config
from ..signing import FreeClimbSigner, TelnyxSigner

KEYS_FILE = "webhook_keys.json"


@dataclass(frozen=True)
class AccountKeys:
    telnyx: TelnyxSigner
    freeclimb: FreeClimbSigner


def load_or_create_keys(config: Config) -> dict[str, AccountKeys]:
    """Read the key file, add keys for accounts that have none, and return every account's signers."""
    path = Path(config.data_dir) / KEYS_FILE
    stored: dict[str, dict[str, str]] = {}
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for account in config.accounts:
        entry = stored.get(account.id)
        if entry is None:
            entry = {
                "ed25519_private_key": base64.b64encode(TelnyxSigner.generate_private_key()).decode("ascii"),
                "freeclimb_signing_secret": FreeClimbSigner.generate_secret(),
            }
            stored[account.id] = entry
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(stored, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    env_secret = {w.account: w.freeclimb_signing_secret_env for w in config.webhooks.accounts}
    out: dict[str, AccountKeys] = {}
    for account in config.accounts:
        entry = stored[account.id]
        secret = entry["freeclimb_signing_secret"]
        env = env_secret.get(account.id)
        if env and os.environ.get(env):
            secret = os.environ[env]
        out[account.id] = AccountKeys(
            telnyx=TelnyxSigner(base64.b64decode(entry["ed25519_private_key"])),
            freeclimb=FreeClimbSigner(secret),
        )
    return out
