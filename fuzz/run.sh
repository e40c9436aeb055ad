#!/usr/bin/env bash
# Coverage-guided fuzzing of maildrift's parsers for a bounded time:
#   fuzz/run.sh SECONDS [TARGET...]     (default: every target, one after the other)
# libFuzzer through the libfuzzer-sys crate, on stable Rust: the SanitizerCoverage flags
# below are the ones cargo-fuzz passes (without its nightly-only AddressSanitizer). Each
# target starts from fuzz/seeds/TARGET and keeps what it learns in fuzz/corpus/TARGET
# (not committed). A crash or hang (an input over 10 s) is written to
# fuzz/artifacts/TARGET/ and fails the run; turn it into a regression test (README.md).
# Prints executions per target; exit 1 when any target found something.
set -euo pipefail
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")"
all=(spf_record spf_macro dmarc_record dkim_key mta_sts tls_rpt bimi_record config web_config)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi

# Separate from the normal build's artifacts: every crate is compiled with these flags.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# With an explicit --target the flags reach only the code under test, not build scripts
# and proc macros (which would not link without libFuzzer).
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --bins --target "$host"
bin_dir="$CARGO_TARGET_DIR/$host/release"

mkdir -p logs
found=0
printf '%-14s %8s %12s %10s %8s %s\n' target seconds executions exec/s corpus found
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="logs/$target.log"
  status=0
  "$bin_dir/$target" "corpus/$target" "seeds/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'exec/s: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || echo 0)
  corpus=$(find "corpus/$target" -type f | wc -l)
  crashes=$(find "artifacts/$target" -type f | wc -l)
  if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then found=1; fi
  printf '%-14s %8s %12s %10s %8s %s\n' "$target" "$seconds" "${execs:-0}" "${rate:-0}" "$corpus" \
    "$([ "$crashes" -gt 0 ] && echo "$crashes in artifacts/$target" || echo none)"
done
exit "$found"
