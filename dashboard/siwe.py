"""Sign-In with Ethereum (EIP-4361): the message, its text form, and its checks.

The dashboard issues the whole message (domain, URI, chain, a single-use nonce,
expiry), the wallet signs its text with ``personal_sign`` (EIP-191), and the server
parses the signed text back, checks every field against what it issued, and recovers
the signer. Nothing here trusts the browser: a message is accepted only if it is the
one the server would have written, signed by the address it names.

The domain and URI a message must name come from the dashboard's configured public
origin(s) (:class:`Origin`), never from the request: a ``Host`` header is the
browser's (or an attacker's) word, so a message signed for another site, or reached
through DNS rebinding, names a domain this dashboard does not serve and is refused.

The parser is written here rather than taken from the maintained ``siwe`` package
because no release of it (0.0.1 to 4.4.0) accepts the eth-account 0.14 this project
pins: the newest require ``eth-account>=0.13.1,<0.14``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address, to_checksum_address

PREAMBLE = " wants you to sign in with your Ethereum account:"
VERSION = "1"
_NONCE = re.compile(r"^[A-Za-z0-9]{8,}$")


class SiweError(ValueError):
    """A sign-in message or signature that must be refused; the text says why."""


_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Origin:
    """A public origin of the dashboard (scheme, host, port): what sign-in messages name."""

    scheme: str
    host: str  # lower case; an IPv6 literal in brackets
    port: int

    @classmethod
    def parse(cls, url: str) -> Origin:
        """``http(s)://host[:port]`` with nothing after it (a trailing ``/`` is allowed)."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise SiweError(f"origin {url!r} is not a URL: {exc}") from None
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise SiweError(f"origin {url!r} must be http:// or https:// and name a host")
        if parts.username is not None or parts.password is not None:
            raise SiweError(f"origin {url!r} must not carry credentials")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise SiweError(f"origin {url!r} must be scheme://host[:port] only, without a path")
        host = parts.hostname.lower()
        if ":" in host:
            host = f"[{host}]"
        return cls(parts.scheme, host, port if port is not None else _DEFAULT_PORTS[parts.scheme])

    @property
    def domain(self) -> str:
        """The RFC 3986 authority, as EIP-4361's ``domain`` (the port only when not the default)."""
        return self.host if self.port == _DEFAULT_PORTS[self.scheme] else f"{self.host}:{self.port}"

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.domain}/"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.domain}"

    def serves(self, host_header: str) -> bool:
        """Whether a request's ``Host`` header names this origin (the default port may be explicit)."""
        host = host_header.strip().lower()
        return host in (self.domain, f"{self.host}:{self.port}")


def origin_for_host(origins: Sequence[Origin], host_header: str | None) -> Origin | None:
    """The configured origin a request's ``Host`` names, or None when it names none of them."""
    if not host_header:
        return None
    return next((o for o in origins if o.serves(host_header)), None)


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str  # EIP-55 checksummed
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime | None = None
    statement: str | None = None
    version: str = VERSION

    def text(self) -> str:
        """The exact text the wallet signs (EIP-4361's ABNF)."""
        lines = [f"{self.domain}{PREAMBLE}", self.address, ""]
        if self.statement:
            lines += [self.statement, ""]
        else:
            lines += [""]
        lines += [f"URI: {self.uri}", f"Version: {self.version}", f"Chain ID: {self.chain_id}",
                  f"Nonce: {self.nonce}", f"Issued At: {_timestamp(self.issued_at)}"]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {_timestamp(self.expiration_time)}")
        return "\n".join(lines)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(field: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SiweError(f"{field} is not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise SiweError(f"{field} has no time zone")
    return moment


def parse(text: str) -> SiweMessage:
    """Parse an EIP-4361 message; refuse anything that is not one, naming the field."""
    lines = text.split("\n")
    if len(lines) < 8 or not lines[0].endswith(PREAMBLE):
        raise SiweError("not a Sign-In with Ethereum message (first line)")
    domain = lines[0][: -len(PREAMBLE)]
    address = lines[1]
    if not is_checksum_address(address):
        raise SiweError("address is not an EIP-55 checksummed Ethereum address")
    if lines[2] != "":
        raise SiweError("expected an empty line after the address")
    rest = lines[3:]
    statement = None
    if rest and rest[0] == "":
        rest = rest[1:]
    elif len(rest) >= 2 and rest[1] == "":
        statement, rest = rest[0], rest[2:]
    else:
        raise SiweError("malformed statement block")
    fields: dict[str, str] = {}
    for line in rest:
        key, sep, value = line.partition(": ")
        if not sep or key in fields:
            raise SiweError(f"malformed or repeated field line: {line[:60]!r}")
        fields[key] = value
    for required in ("URI", "Version", "Chain ID", "Nonce", "Issued At"):
        if required not in fields:
            raise SiweError(f"missing field {required!r}")
    unknown = set(fields) - {"URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time"}
    if unknown:
        raise SiweError(f"unsupported fields: {sorted(unknown)}")
    if fields["Version"] != VERSION:
        raise SiweError(f"unsupported version {fields['Version']!r}")
    if not fields["Chain ID"].isdigit():
        raise SiweError("Chain ID is not a number")
    if not _NONCE.match(fields["Nonce"]):
        raise SiweError("nonce must be at least 8 alphanumeric characters")
    expiration = fields.get("Expiration Time")
    return SiweMessage(
        domain=domain, address=address, uri=fields["URI"], chain_id=int(fields["Chain ID"]),
        nonce=fields["Nonce"], issued_at=_parse_time("Issued At", fields["Issued At"]),
        expiration_time=_parse_time("Expiration Time", expiration) if expiration else None,
        statement=statement,
    )


def recover_signer(text: str, signature: str) -> str:
    """The address whose EIP-191 ``personal_sign`` over ``text`` is ``signature``."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise SiweError("signature is not hex") from None
    if len(raw) != 65:
        raise SiweError(f"signature must be 65 bytes, got {len(raw)}")
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=raw))
    except Exception as exc:  # eth_keys raises several types for invalid (r, s, v)
        raise SiweError(f"signature does not recover: {exc}") from None


def verify(text: str, signature: str, *, origins: Sequence[Origin], chain_id: int,
           now: datetime | None = None) -> SiweMessage:
    """Parse and check a signed message against what this server issues.

    Its domain must be one of the configured ``origins`` and its URI that origin's;
    nothing about the request that carries it is consulted."""
    message = parse(text)
    now = now or datetime.now(UTC)
    origin = next((o for o in origins if o.domain == message.domain), None)
    if origin is None:
        served = ", ".join(repr(o.domain) for o in origins)
        raise SiweError(f"message is for domain {message.domain!r}, this dashboard is {served}")
    if message.uri != origin.uri:
        raise SiweError(f"message is for URI {message.uri!r}, this dashboard's is {origin.uri!r}")
    if message.chain_id != chain_id:
        raise SiweError(f"message is for chain {message.chain_id}, the dashboard reads chain {chain_id}")
    if message.expiration_time is not None and message.expiration_time <= now:
        raise SiweError("message has expired")
    if message.issued_at > now.replace(microsecond=0) and (message.issued_at - now).total_seconds() > 60:
        raise SiweError("message is issued in the future")
    signer = recover_signer(text, signature)
    if signer != message.address:
        raise SiweError(f"signature is by {signer}, not by {message.address}")
    return message


def to_checksum(address: str) -> str:
    """EIP-55 form of a 20-byte hex address; refuse anything else."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
        raise SiweError("address must be 0x followed by 40 hex digits")
    return str(to_checksum_address(address))
