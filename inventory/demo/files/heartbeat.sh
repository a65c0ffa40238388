#!/bin/sh
# Demo: a frequent heartbeat, run as an unprivileged user.
echo "heartbeat: alive as $(id -un) at $(date -u +%H:%M:%S)"
