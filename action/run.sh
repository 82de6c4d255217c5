#!/usr/bin/env bash
# The commands of action.yml, one place: `run.sh validate` or `run.sh release`, configured by the
# environment the action's steps set from its inputs (never by ${{ }} inside a script, so no
# input can inject shell). Runs pytest in the current directory, the policy repository.
set -euo pipefail
mode="${1:?usage: run.sh validate|release}"
reports=(--junitxml=report.xml --json-report --json-report-file=report.json)
workers=(-n "${WORKERS:-auto}")

case "$mode" in
  validate)
    if [ -z "${BASE_REF:-}" ]; then
      echo "::error title=policy release harness::validate needs base-ref (or a pull_request event)"
      exit 2
    fi
    exec python -m pytest --changed-since "$BASE_REF" "${workers[@]}" "${reports[@]}"
    ;;
  release)
    args=(--release --release-sha "${RELEASE_SHA:?}")
    [ -n "${CA_BUNDLE:-}" ] && args+=(--hub-ca-bundle "$CA_BUNDLE")
    # Trusted publishing (an empty hub-token): the ID token's audience, when not the default.
    [ -n "${AUDIENCE:-}" ] && args+=(-o "policy_hub_audience=$AUDIENCE")
    if [ -n "${FINALIZE:-}" ]; then
      # The glob is expanded here: a shard without a fragment is simply absent.
      shopt -s nullglob
      # shellcheck disable=SC2206  # word splitting and globbing are the point
      fragments=($FINALIZE)
      if [ "${#fragments[@]}" -eq 0 ]; then
        echo "::error title=policy release harness::no fragment matches '$FINALIZE': every shard failed or uploaded nothing; the baseline stays"
        exit 1
      fi
      args+=(--finalize "${fragments[@]}")
      workers=()
    elif [ -n "${SHARD:-}" ]; then
      args+=(--shard "$SHARD")
    fi
    if [ "${DRY_RUN:-false}" = "true" ]; then
      args+=(--dry-run)
    elif [ -z "${SHARD:-}" ] && [ "${PUSH:-true}" = "true" ]; then
      args+=(--commit-state --push)
    fi
    exec python -m pytest "${args[@]}" "${workers[@]}" "${reports[@]}"
    ;;
  *)
    echo "::error title=policy release harness::mode must be validate or release, not '$mode'"
    exit 2
    ;;
esac
