"""The ``cluster:`` block of config.yaml (README "Running several nodes").

Off by default: one process, SQLite, no Redis. Kept apart from ``bridge/config.py`` so that
module stays small; ``Config.cluster`` is typed with it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NODE_ID = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    node_id: str | None = None                # unique per node, e.g. "node-a"
    redis_url: str | None = None              # redis://host:port/db
    key_prefix: str = Field(default="tutti:", min_length=1, max_length=64)
    advertise_sip: str | None = None          # what Kamailio routes to: sip:10.0.0.5:5060
    advertise_http: str | None = None         # this node's API base URL (registry only)
    lease_ttl_s: float = Field(default=5.0, ge=1, le=600)
    heartbeat_s: float = Field(default=1.0, gt=0, le=60)  # a lost node is noticed after 3-4

    @model_validator(mode="after")
    def _required_when_enabled(self) -> ClusterConfig:
        if not self.enabled:
            return self
        missing = [k for k in ("node_id", "redis_url", "advertise_sip", "advertise_http") if not getattr(self, k)]
        if missing:
            raise ValueError(f"cluster.enabled needs {', '.join(missing)}")
        assert self.node_id is not None and self.redis_url is not None and self.advertise_sip is not None
        if not _NODE_ID.match(self.node_id):
            raise ValueError("cluster.node_id: 1-64 letters, digits, '.', '_' or '-'")
        if urlsplit(self.redis_url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("cluster.redis_url must start with redis://, rediss:// or unix://")
        sip = urlsplit(self.advertise_sip)
        if sip.scheme not in ("sip", "sips") or not sip.path:
            raise ValueError("cluster.advertise_sip must be a SIP URI such as sip:10.0.0.5:5060")
        if urlsplit(self.advertise_http or "").scheme not in ("http", "https"):
            raise ValueError("cluster.advertise_http must be an http(s) URL such as http://10.0.0.5:8080")
        if self.lease_ttl_s < 2 * self.heartbeat_s:
            raise ValueError("cluster.lease_ttl_s must be at least twice heartbeat_s (a lease must survive "
                             "one missed heartbeat)")
        return self
