"""One policy version delivered (docs/contract.md section 3, step 4): the hub check, validation and
the publish, each answer checked by `hub_record` before it may count (`deliver_version`).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from datetime import UTC, datetime

from policy_checks import (
    CheckResult,
    publish_body,
)
from publisher.hub.client import HubAnswer, HubClient, describe_body, hub_record
from publisher.release.hubchecks import HubOutage, TokenRefused, unreachable_reason
from publisher.release.outcome import ItemOutcome, Outcome, first_problem
from publisher.release.plan import well_formed
from publisher.state.folder import DeliveryRecord

# Findings that make a folder unusable before any request: it is not sent, not even looked up.
STRUCTURAL_RULES = frozenset({"symlink", "layout"})


def idempotency_key(release_sha: str, name: str, version: str) -> str:
    return f"{release_sha}:{name}@{version}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# What the items after the one that found it say; the reason itself is said once.
LATER_OUTAGE = (
    "not attempted: the hub at {url} did not answer earlier in this run (the reason is said "
    "once, at the start or in the summary)"
)
LATER_REFUSAL = (
    "not attempted: the hub refused the token on an earlier publish in this run (the reason is "
    "said once, in the summary)"
)


def _auth_reason(answer: HubAnswer) -> str:
    body = answer.body if isinstance(answer.body, dict) else {}
    if body.get("error") == "token-unavailable":
        # Trusted publishing could not renew its hub token (HubClient said why, printable).
        return f"no hub token: {body.get('detail')}"
    return (
        f"the hub refused the token (HTTP {answer.status}): check POLICY_HUB_TOKEN "
        "and that it has write access"
    )


def deliver_version(
    result: CheckResult,
    client: HubClient,
    release_sha: str,
    auth_problem: str | None = None,
    *,
    dry_run: bool = False,
    hub_check: HubAnswer | Future[HubAnswer] | None = None,
    outage: HubOutage | None = None,
    token_refused: TokenRefused | None = None,
) -> ItemOutcome:
    """One version through the hub check, validation and publishing (docs/contract.md section 3.4).

    `hub_check` is the GET already sent for this version (`hubchecks.HubCheckBoard`), or
    started (`HubCheckPrefetch`); its answer is used exactly as if the GET were sent here.
    Every answer is checked by `hub_record` before it can make the version count as delivered.
    """
    out = ItemOutcome(
        folder=result.folder,
        name=result.name,
        version=result.version,
        outcome=Outcome.INVALID,
        digest=result.digest,
        findings=list(result.findings),
        tests=result.tests,
    )
    if not well_formed(result.name, result.version) or any(
        f.rule in STRUCTURAL_RULES for f in result.findings
    ):
        out.reason = first_problem(out.findings) or "not a valid policy folder; nothing sent"
        return out
    if auth_problem:
        out.outcome, out.reason = Outcome.NOT_ATTEMPTED, auth_problem
        return out
    if outage is not None and outage.known():
        out.outcome, out.reason = Outcome.NOT_ATTEMPTED, LATER_OUTAGE.format(url=client.base_url)
        return out

    deadline = time.monotonic() + client.policy.item_deadline
    if isinstance(hub_check, Future):
        hub_check = hub_check.result()
    answer = hub_check or client.get_policy(result.name, result.version, deadline=deadline)
    out.get_status = answer.status
    if answer.unreachable:
        why = unreachable_reason(client.base_url, answer)
        if outage:
            outage.mark(why)
        out.outcome, out.reason = Outcome.NOT_ATTEMPTED, f"not attempted: {why}"
        return out
    check_note = ""
    if answer.status == 200:
        record = hub_record(answer.body, result.name, result.version)
        if record is not None:
            return _delivered(
                out,
                Outcome.ALREADY_IN_HUB,
                release_sha,
                record.digest,
                "already in the hub",
                dry_run,
            )
        check_note = (
            f" (the hub check answered HTTP 200 with {describe_body(answer.body)}, "
            "not a record of this version: taken as not found)"
        )
    elif answer.status != 404:
        check_note = f" (hub check: {answer.describe})"

    if not result.ok:
        out.reason = first_problem(out.findings)
        return out
    # Any other answer to the GET (401/403 included) goes on to the POST, as the contract says;
    # a token the hub refuses was already reported once, up front, by the plugin's preflight.
    if dry_run:
        out.outcome = Outcome.WOULD_PUBLISH
        out.reason = "would be published" + check_note
        return out

    if token_refused is not None and token_refused.known():
        out.outcome, out.reason = Outcome.NOT_ATTEMPTED, LATER_REFUSAL
        return out
    if outage is not None and outage.known():  # found down while this version was checked
        out.outcome, out.reason = Outcome.NOT_ATTEMPTED, LATER_OUTAGE.format(url=client.base_url)
        return out
    key = idempotency_key(release_sha, result.name, result.version)
    assert result.digest is not None  # result.ok: both files parsed
    body = publish_body(
        result.name, result.version, result.metadata, result.definition, result.digest, release_sha
    )
    answer = client.publish(body, key, deadline=deadline)
    out.post_status = answer.status
    status = answer.status
    if answer.unreachable and outage:
        outage.mark(unreachable_reason(client.base_url, answer))
    if status is not None and 200 <= status < 300:
        record = hub_record(answer.body, result.name, result.version)
        if record is not None:
            return _delivered(
                out, Outcome.PUBLISHED, release_sha, record.digest, "published" + check_note
            )
        out.outcome = Outcome.PUBLISH_FAILED
        out.reason = (
            f"the hub answered HTTP {status} but not with its record of "
            f"{result.name}@{result.version} ({describe_body(answer.body)}); not recorded as "
            "delivered: the next release asks the hub again"
        )
        return out
    if status == 409 and isinstance(answer.body, dict) and answer.body.get("error") == "exists":
        record = hub_record(answer.body, result.name, result.version)
        if record is not None:
            return _delivered(
                out, Outcome.ALREADY_IN_HUB, release_sha, record.digest, "already in the hub (409)"
            )
    out.outcome = Outcome.PUBLISH_FAILED
    if (
        status == 403
        and isinstance(answer.body, dict)
        and answer.body.get("error") == "forbidden-name"
    ):
        # The token may write other names (docs/contract.md section 9): this version only.
        out.reason = (
            f"publish failed: HTTP 403 forbidden-name: this token may not publish {result.name}"
            " (the names its hub token line or trusted publisher allows)"
        )
    elif status in (401, 403):
        out.reason = _auth_reason(answer)
        if token_refused is not None:
            token_refused.mark(out.reason)
    elif status is not None and 300 <= status < 400:
        out.reason = f"the hub answered a redirect (HTTP {status}); POST is never redirected"
    elif status == 409:
        out.reason = (
            f"publish failed: HTTP 409 without the hub's record of {result.name}@"
            f"{result.version} ({describe_body(answer.body)})"
        )
    else:
        out.reason = f"publish failed: {answer.describe}"
    return out


def _delivered(
    out: ItemOutcome,
    outcome: str,
    release_sha: str,
    hub_digest: str,
    reason: str,
    dry_run: bool = False,
) -> ItemOutcome:
    """Count the version as delivered. `digest` is the local files' digest (docs/contract.md
    section 4); only when the local files give none (they do not parse) is the hub's recorded
    instead."""
    local = out.digest
    out.outcome = outcome
    out.reason = reason
    if local and hub_digest != local:
        out.hub_digest = hub_digest
        out.reason = (
            f"{reason}, BUT THE HUB HOLDS DIFFERENT CONTENT for this version "
            f"(hub {hub_digest[:19]}…, local {local[:19]}…); versions are immutable: "
            "publish the change as a new version"
        )
    if dry_run:
        return out
    out.delivery = DeliveryRecord(
        name=out.name,
        version=out.version,
        delivered_at=_now(),
        release_sha=release_sha,
        digest=local or hub_digest,
        outcome=outcome,
        hub_digest=out.hub_digest,
    )
    return out
