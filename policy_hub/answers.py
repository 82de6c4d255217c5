"""Every answer body of the hub, built here and nowhere else: the error shape `{"error": code,
"detail": text, ...}` of every refusal, and the answers to a POST (`201` created, `409` exists or
in-flight, the `422` refusals) that the app sends and the stores keep under its Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    """What the hub answers to one POST: the status, the JSON body, and the audit's word."""

    status: int
    body: dict[str, Any]
    outcome: str


def error_body(error: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The body of every refusal (models.ErrorBody): a stable code, a text for people, and the
    fields some codes add (`exists` the stored version, `invalid` its problems)."""
    return {"error": error, "detail": detail, **extra}


def created(
    policy: dict[str, Any], published_at: str, publisher: Mapping[str, Any] | None
) -> Answer:
    """`201`: the record as stored, as GET answers it (never yanked yet)."""
    record = {
        "name": policy["name"],
        "version": policy["version"],
        "digest": policy["digest"],
        "published_at": published_at,
        "metadata": policy["metadata"],
        "definition": policy["definition"],
        "release_sha": policy["release_sha"],
        "publisher": dict(publisher) if publisher is not None else None,
        "yanked": None,
    }
    return Answer(201, record, "created")


def exists(policy: dict[str, Any], stored_digest: str) -> Answer:
    """`409 exists`: the version is already published; the digest is the STORED one."""
    body = error_body(
        "exists",
        "this version is already published and is immutable",
        name=policy["name"],
        version=policy["version"],
        digest=stored_digest,
    )
    return Answer(409, body, "exists")


def in_flight() -> Answer:
    body = error_body("in-flight", "a request with this Idempotency-Key is being processed; retry")
    return Answer(409, body, "in-flight")


def key_reused() -> Answer:
    body = error_body(
        "idempotency-key-reused", "this Idempotency-Key was used with a different body"
    )
    return Answer(422, body, "key-reused")


def digest_mismatch(claimed: str, computed: str) -> Answer:
    detail = f"digest {claimed} does not match the content ({computed})"
    return Answer(422, error_body("digest-mismatch", detail), "digest-mismatch")


def metadata_mismatch(mismatches: list[str]) -> Answer:
    """`422 metadata-mismatch`, each mismatch said (models.metadata_mismatches)."""
    return Answer(422, error_body("metadata-mismatch", "; ".join(mismatches)), "metadata-mismatch")
