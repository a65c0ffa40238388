#!/bin/sh
# Demo: a long publisher that makes a mess when interrupted.
set -eu
seconds=${1:-20}
trap 'echo "publisher: INTERRUPTED mid-publish: the catalogue is half written" >&2; exit 1' TERM INT
echo "publisher: publishing for ${seconds}s"
i=0
while [ "$i" -lt "$seconds" ]; do sleep 1; i=$((i + 1)); done
echo "publisher: catalogue published"
