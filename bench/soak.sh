#!/usr/bin/env bash
# The soak: bench/soak.sh [SECONDS] [DOMAINS] [INTERVAL_SECONDS]   (default 600 2000 5)
# Builds the release daemon and the driver (bench/soak/, its own workspace), then runs
# DOMAINS domains every INTERVAL against the tests' fault-injecting DNS server (half healthy,
# half behind faults) for SECONDS, sampling RSS, open fds, tokio tasks and the state
# database every 10 s. Exits 1 when growth exceeds the bounds printed at the end
# (bench/SOAK.md has a recorded run). Bounded: the driver stops the daemon by PID at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
domains=${2:-2000}
interval=${3:-5}
# SOAK_PROFILE=debug soaks the debug build (when a release build is out of reach; say so).
profile=${SOAK_PROFILE:-release}
flag=$([ "$profile" = release ] && echo --release || true)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build $flag --bin maildrift
(cd bench/soak && cargo build $flag)
# Thousands of domains need more than the default 1024 descriptors on some systems.
ulimit -n 65536 2>/dev/null || true
exec "$CARGO_TARGET_DIR/$profile/maildrift-soak" "$CARGO_TARGET_DIR/$profile/maildrift" \
  "$seconds" "$domains" "$interval"
