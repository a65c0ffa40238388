#!/bin/sh
# Demo: a catch-up backfill with the drain contract.
#   exit 3 = checkpoint, more to do; 0 = worklist drained; 4 = halt (bad data).
# The cursor lives in $TICKGATE_DATA_DIR (the job's own data dir). A file
# named "poison" there makes the next batch fail hard (exit 4).
set -eu
batches=4
[ "${1:-}" = "--batches" ] && batches=$2
cursor_file="$TICKGATE_DATA_DIR/cursor"
cursor=$(cat "$cursor_file" 2>/dev/null || echo 0)
if [ -e "$TICKGATE_DATA_DIR/poison" ]; then
  echo "backfill: batch $((cursor + 1)) has bad data; halting" >&2
  exit 4
fi
if [ "$cursor" -ge "$batches" ]; then
  echo "backfill: worklist drained ($cursor/$batches)"
  exit 0
fi
# A checkpoint: stop cleanly if the gate closed or an operator halted us.
if ! tickgate gate check; then
  echo "backfill: gate says stop; checkpoint at $cursor"
  exit 3
fi
cursor=$((cursor + 1))
sleep 1
echo "$cursor" >"$cursor_file.tmp" && mv "$cursor_file.tmp" "$cursor_file"
if [ "$cursor" -ge "$batches" ]; then
  echo "backfill: batch $cursor/$batches done; worklist drained"
  exit 0
fi
echo "backfill: batch $cursor/$batches done; more to do"
exit 3
