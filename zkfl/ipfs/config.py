"""Where a role's IPFS lives: its own node's RPC, gateways to read from, a pinning service.

All of it comes from the environment (or the CLI flags that set it), so a user points
zkfl at their own node, a public gateway or a pinning service with a URL and a token,
never a code change. The pinning token is read from the environment only: it never
appears on a command line, in the content store or in a log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zkfl.errors import ConfigError

API_ENV = "ZKFL_IPFS_API"  # a Kubo-RPC-compatible node this role adds and pins to
GATEWAYS_ENV = "ZKFL_IPFS_GATEWAYS"  # comma-separated trustless gateways to read from
PINNING_URL_ENV = "ZKFL_PINNING_URL"  # an IPFS Pinning Service API endpoint
PINNING_TOKEN_ENV = "ZKFL_PINNING_TOKEN"  # its bearer token
TIMEOUT_ENV = "ZKFL_IPFS_TIMEOUT"  # seconds per request (default 30)
RETRIES_ENV = "ZKFL_IPFS_RETRIES"  # failed passes over the sources per read before giving up (default 4)


@dataclass(frozen=True)
class IpfsConfig:
    api: str | None = None
    gateways: tuple[str, ...] = ()
    pinning_url: str | None = None
    pinning_token: str | None = None
    timeout: float = 30.0
    retries: int = 4  # failed passes over the sources per read (not per block)

    @property
    def configured(self) -> bool:
        return self.api is not None or bool(self.gateways)

    @classmethod
    def from_env(cls) -> IpfsConfig:
        gateways = tuple(_url(g, GATEWAYS_ENV) for g in os.environ.get(GATEWAYS_ENV, "").split(",") if g.strip())
        api = os.environ.get(API_ENV) or None
        pinning_url = os.environ.get(PINNING_URL_ENV) or None
        token = os.environ.get(PINNING_TOKEN_ENV) or None
        if pinning_url and not token:
            raise ConfigError(f"{PINNING_URL_ENV} is set but {PINNING_TOKEN_ENV} is not: a pinning service needs one")
        return cls(api=_url(api, API_ENV) if api else None, gateways=gateways,
                   pinning_url=_url(pinning_url, PINNING_URL_ENV) if pinning_url else None, pinning_token=token,
                   timeout=_number(TIMEOUT_ENV, 30.0), retries=int(_number(RETRIES_ENV, 4)))

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return (f"IpfsConfig(api={self.api!r}, gateways={self.gateways!r}, pinning_url={self.pinning_url!r}, "
                f"pinning_token={'***' if self.pinning_token else None})")


def _url(value: str, name: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name}: {value!r} is not an http(s) URL")
    return value


def _number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value
