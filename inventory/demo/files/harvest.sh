#!/bin/sh
# Demo: a nightly harvest from a rate-limited API (simulated by a sleep).
# Exit 5 = a transient error (the job retries it: retry_codes). When the API
# says "429, retry after 15 min" (simulated: touch $TICKGATE_DATA_DIR/api-429)
# it tells tickgate, and every job of lock group "api" (the backfill too)
# skips until then.
set -eu
echo "harvest: run ${TICKGATE_RUN_ID:-?} holding lock ${TICKGATE_LOCK:-?}: fetching records $*"
if [ -e "${TICKGATE_DATA_DIR:-/nonexistent}/api-429" ]; then
  echo "harvest: the API said 429 (Retry-After: 900)" >&2
  tickgate backoff --for 15min --reason "429 from api.example.com (Retry-After: 900)"
  exit 5
fi
sleep "${HARVEST_SECONDS:-3}"
echo "harvest: stored 1234 records"
