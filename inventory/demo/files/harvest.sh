#!/bin/sh
# Demo: a nightly harvest from a rate-limited API (simulated by a sleep).
set -eu
echo "harvest: run ${TICKGATE_RUN_ID:-?} holding lock ${TICKGATE_LOCK:-?}: fetching records $*"
sleep "${HARVEST_SECONDS:-3}"
echo "harvest: stored 1234 records"
