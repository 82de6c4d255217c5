"""Provenance attestations (docs/contract.md section 9): the in-toto Statement v1 the hub signs for
each record it creates, its DSSE envelope signed with Ed25519 over DSSE's pre-authentication
encoding, the public keys as JWKs, and the signing key file. Every key and signature operation is
the `cryptography` package's; the only encoding written here is PAE, which DSSE defines.

A key's id (`kid` of its JWK, `keyid` of its signatures) is the unpadded base64url of the
SHA-256 of its 32 raw public-key bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# Ours: the predicate is {publisher, release_sha, published_at}, each equal to the record's. A URN
# rather than a URL: it is signed into every attestation for good, so it must not name a host or
# an organisation that a fork or a move would change (in-toto's TypeURI allows any URI).
PREDICATE_TYPE = "urn:policy-release-harness:policy-hub:publish:v1"
KEY_FILE_MODE = 0o600


class SigningKeyError(Exception):
    """A --signing-key file that cannot be used (said with its path, never its content)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Unpadded (or padded) base64url; ValueError when it is not."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`
    (lengths in ASCII decimal of the UTF-8 bytes)."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return b64url(hashlib.sha256(raw_public(key)).digest())


def jwk_of(key: Ed25519PublicKey) -> dict[str, str]:
    """The public key as RFC 8037 JWK, with its `kid`."""
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw_public(key)), "kid": key_id(key)}


def public_key_of(jwk: Any) -> tuple[str, Ed25519PublicKey] | None:
    """(kid, key) of an Ed25519 JWK, or None when it is not one (or its kid is not its own)."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    try:
        raw = b64url_decode(jwk.get("x"))  # type: ignore[arg-type]
        key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None
    kid = key_id(key)
    if jwk.get("kid") not in (None, kid):
        return None
    return kid, key


def statement(
    name: str,
    version: str,
    digest: str,
    publisher: Mapping[str, Any] | None,
    release_sha: str,
    published_at: str,
) -> dict[str, Any]:
    """The in-toto Statement v1 of one record (digest `sha256:<hex>`, as the record has it)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": f"{name}@{version}", "digest": {"sha256": digest.removeprefix("sha256:")}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "publisher": dict(publisher) if publisher is not None else None,
            "release_sha": release_sha,
            "published_at": published_at,
        },
    }


@dataclass(frozen=True)
class Signer:
    """The hub's signing key; `sign` makes a DSSE envelope of a Statement."""

    key: Ed25519PrivateKey

    def __repr__(self) -> str:  # never the private key
        return f"Signer(kid={self.kid!r})"

    # Computed once (cached_property writes the instance's __dict__, frozen or not): every
    # record's create names the key.
    @cached_property
    def kid(self) -> str:
        return key_id(self.key.public_key())

    @cached_property
    def jwk(self) -> dict[str, str]:
        return jwk_of(self.key.public_key())

    def sign(self, statement: Mapping[str, Any]) -> dict[str, Any]:
        payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
        signature = self.key.sign(pae(PAYLOAD_TYPE, payload))
        return {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode("ascii"),
            "signatures": [{"keyid": self.kid, "sig": base64.b64encode(signature).decode("ascii")}],
        }


class EnvelopeError(ValueError):
    """Why an envelope does not verify (one short line, safe to print after `printable`)."""


def verify_envelope(envelope: Any, keys: Iterable[Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(keyid, Statement) of a DSSE envelope one of whose signatures verifies with one of `keys`
    (JWKs); EnvelopeError saying why not."""
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("the attestation is not a JSON object")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise EnvelopeError(f"payloadType is not {PAYLOAD_TYPE}")
    try:
        payload = base64.b64decode(str(envelope.get("payload")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError("payload is not base64") from exc
    known: dict[str, Ed25519PublicKey] = {}
    for jwk in keys:
        found = public_key_of(jwk)
        if found is not None:
            known[found[0]] = found[1]
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("no signatures")
    message = pae(PAYLOAD_TYPE, payload)
    unknown = []
    for signature in signatures[:16]:
        if not isinstance(signature, Mapping):
            continue
        keyid, sig = signature.get("keyid"), signature.get("sig")
        key = known.get(keyid) if isinstance(keyid, str) else None
        if key is None:
            unknown.append(str(keyid)[:64])
            continue
        try:
            key.verify(base64.b64decode(str(sig), validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            continue
        try:
            parsed = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise EnvelopeError("the signed payload is not JSON") from exc
        if not isinstance(parsed, dict):
            raise EnvelopeError("the signed payload is not a JSON object")
        return str(keyid), parsed
    if unknown and len(unknown) == len(signatures):
        raise EnvelopeError(f"signed by a key not among the trusted keys (keyid {unknown[0]})")
    raise EnvelopeError("no signature verifies with the trusted keys")


def load_signing_key(path: Path, *, create: bool = True) -> Signer:
    """The Ed25519 private key in PEM file `path`; when it does not exist (and `create`), a new
    one written there with mode 0600 (atomically: two processes starting at once end with one
    key). SigningKeyError naming the file, never showing its content."""
    path = Path(path)
    if create and not path.exists():
        _create_key_file(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(
            f"--signing-key {path}: cannot read it ({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(
            f"--signing-key {path}: not a PEM private key without a password"
        ) from None
    except Exception:  # cryptography raises its own kinds for unsupported algorithms
        raise SigningKeyError(f"--signing-key {path}: not a usable PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"--signing-key {path}: not an Ed25519 key")
    return Signer(key)


def _create_key_file(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        # link, not replace: a key another process made first is kept, never overwritten.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    except OSError as exc:
        raise SigningKeyError(
            f"--signing-key {path}: cannot create it ({exc.strerror or type(exc).__name__})"
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
