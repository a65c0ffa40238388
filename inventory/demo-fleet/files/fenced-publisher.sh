#!/bin/sh
# Demo: a publisher writing a catalogue on storage every host mounts. The
# fleet lock keeps it to one host at a time; the fence keeps a holder that
# lost its lease (a host paused longer than the lease) from writing after a
# newer one has: before each write it shows its fence (TICKGATE_FENCE) to the
# store beside the catalogue, which refuses one lower than it has seen.
set -eu
dir=${1:-/srv/shared/catalogue}
for part in 1 2 3; do
  # 0: write; 1: a newer holder wrote (or the lease is in doubt): stop;
  # anything else: the store could not be read: stop too.
  if tickgate fence check --store "$dir/.fence" >/dev/null; then :; else
    rc=$?
    [ "$rc" = 1 ] && echo "publisher: fence ${TICKGATE_FENCE:-?} is stale: not writing" >&2
    exit 1
  fi
  echo "part $part by $(hostname) with fence $TICKGATE_FENCE" >>"$dir/catalogue.txt"
  sleep 1
done
echo "publisher: catalogue published by $(hostname) with fence $TICKGATE_FENCE"
