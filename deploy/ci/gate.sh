#!/usr/bin/env bash
# ripcord as a CI gate after a deploy step: one cycle for one guard, the HTML report written, the exit code mapped.
# Used by the GitHub Action (action.yml) and the GitLab CI job (deploy/ci/gitlab-ci.yml); runs anywhere with bash.
# With RIPCORD_MODE=validate it checks the configuration instead (`ripcord validate`: every policy loaded, every
# parameter and field checked, nothing called on a platform), for the pipeline that ships guards.toml: exit 1 on
# any problem, each printed as an error annotation.
#
# Environment (all optional but the guard, which validate does not need):
#   RIPCORD_MODE        gate (default) | validate
#   RIPCORD_GUARD       the guard to check (required)
#   RIPCORD_CONFIG      guards.toml (default: guards.toml)
#   RIPCORD_BIN         the ripcord binary (default: ripcord on PATH)
#   RIPCORD_REPORT      where the HTML report goes (default: ripcord-report.html)
#   RIPCORD_STRICT      "true": inconclusive (not enough traffic yet) and degraded also fail the job
#   RIPCORD_DRY_RUN     "true": judge only, never pin (the verdict still fails the job)
# Exit: 0 pass (healthy; inconclusive and degraded unless strict), 2 rollback verdict (ripcord pinned the known good
# unless dry-run), 1 could not judge (fail closed), 3 / 4 inconclusive / degraded when strict.
# Outputs (GITHUB_OUTPUT when set): verdict, exit-code, report. A summary goes to GITHUB_STEP_SUMMARY when set.
set -uo pipefail

config="${RIPCORD_CONFIG:-guards.toml}"
bin="${RIPCORD_BIN:-ripcord}"

if [ "${RIPCORD_MODE:-gate}" = validate ]; then
  problems="$(mktemp)"
  "$bin" validate --config "$config" >"$problems"
  code=$?
  while IFS= read -r line; do
    if [ "$code" -ne 0 ] && [[ "$line" == *": guard"* || "$line" == *": settings."* || "$line" == *": defaults."* ]]; then
      echo "::error::$line"
    else
      echo "$line"
    fi
  done <"$problems"
  [ -n "${GITHUB_OUTPUT:-}" ] && printf 'verdict=%s\nexit-code=%s\n' "$([ "$code" -eq 0 ] && echo valid || echo invalid)" "$code" >>"$GITHUB_OUTPUT"
  rm -f "$problems"
  exit "$code"
fi

guard="${RIPCORD_GUARD:?set RIPCORD_GUARD to the guard to check}"
report="${RIPCORD_REPORT:-ripcord-report.html}"
strict="${RIPCORD_STRICT:-false}"

args=(check --guard "$guard" --config "$config" --json)
[ "${RIPCORD_DRY_RUN:-false}" = true ] && args+=(--dry-run)
result="$(mktemp)"
"$bin" "${args[@]}" >"$result"
code=$?
cat "$result"

case "$code" in
  0) verdict=healthy ;;
  2) verdict=rollback ;;
  3) verdict=inconclusive ;;
  4) verdict=degraded ;;
  *) verdict=error ;;
esac
# The report covers the whole audit log of the configuration; a failure to render it does not change the verdict.
"$bin" report --config "$config" --out "$report" || echo "ripcord-gate: could not render the report" >&2

gate=$code
case "$verdict" in
  healthy) gate=0 ;;
  inconclusive | degraded) [ "$strict" = true ] || gate=0 ;;
  error) gate=1 ;;
esac

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  printf 'verdict=%s\nexit-code=%s\nreport=%s\n' "$verdict" "$code" "$report" >>"$GITHUB_OUTPUT"
fi
message="ripcord: guard $guard: $verdict (exit $code)"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '### %s\n\nReport: `%s` (uploaded as an artifact)\n' "$message" "$report" >>"$GITHUB_STEP_SUMMARY"
fi
case "$verdict" in
  healthy) echo "$message" ;;
  inconclusive | degraded) echo "::warning::$message" ;;
  *) echo "::error::$message" ;;
esac
rm -f "$result"
exit "$gate"
