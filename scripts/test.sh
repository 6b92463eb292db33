#!/usr/bin/env bash
# The whole test suite, as CI (.ci/run) runs it: `cargo test` (every integration test on SQLite
# and on PostgreSQL), then the conformance stage (Schemathesis against the release service on
# both backends, see docs/CONFORMANCE.md). Fails if either fails. The closing lines are
# `cargo test`'s results, repeated after the conformance summary.
#
#   bash scripts/test.sh                      # everything
#   CONFORMANCE=0 bash scripts/test.sh        # cargo test only (same as `cargo test`)
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp "${TMPDIR:-/tmp}/minsheng-cargo-test.XXXXXX")
trap 'rm -f "$log"' EXIT
cargo_rc=0
cargo test 2>&1 | tee "$log" || cargo_rc=$?

conformance_rc=0
if [ "$cargo_rc" -eq 0 ] && [ "${CONFORMANCE:-1}" != 0 ]; then
  # Schemathesis, pinned with every dependency, in a virtual environment under target/ (ignored
  # by git, kept between runs).
  if [ -z "${SCHEMATHESIS:-}" ]; then
    venv=${CONFORMANCE_VENV:-target/conformance-venv}
    want=$(grep -E '^schemathesis==' conformance/requirements.txt | cut -d= -f3)
    if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $want"; then
      echo "==> installing Schemathesis $want into $venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet --disable-pip-version-check -r conformance/requirements.txt
    fi
    export SCHEMATHESIS=$venv/bin/schemathesis
  fi
  started=$(date +%s)
  bash scripts/conformance.sh || conformance_rc=$?
  echo "==> conformance stage: $(($(date +%s) - started))s, exit $conformance_rc"
fi

echo
echo "==> cargo test (exit $cargo_rc)"
grep -E '^test result:|^error|FAILED|panicked' "$log" | tail -n 20 || true
[ "$cargo_rc" -eq 0 ] || exit "$cargo_rc"
exit "$conformance_rc"
