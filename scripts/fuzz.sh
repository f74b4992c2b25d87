#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz: clang-14, coverage + ASan/UBSan on all project code)
# and runs each one, or the ones named, for a bounded time from its seed corpus. Fails when any
# target crashes, leaks, trips a sanitizer or breaks one of its properties; prints a summary of
# libFuzzer's final statistics per target.
#
#   bash scripts/fuzz.sh                        # every target, 30 s each
#   bash scripts/fuzz.sh --seconds 600 jwks     # one target, a long run
#   bash scripts/fuzz.sh --list
#
# New inputs found go to build-fuzz/corpus/<target>/ (the seed corpus in the tree is only read;
# copy an input worth keeping into tests/fuzz/corpus/<target>/ by hand), crashes to
# build-fuzz/artifacts/<target>/, the full output to build-fuzz/logs/<target>.log.
# Needs clang-14 and libclang-rt-14-dev: bash scripts/install-deps.sh --fuzz.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${JWTGATE_FUZZ_BUILD_DIR:-$here/build-fuzz}
seconds=30
list=0
targets=()
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --seconds=*) seconds=${1#--seconds=}; shift ;;
    --list) list=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) targets+=("fuzz_${1#fuzz_}"); shift ;;
  esac
done
case "$seconds" in ''|*[!0-9]*|0) echo "fuzz: --seconds wants a positive whole number, got '$seconds'" >&2; exit 2 ;; esac

cmake_args=(-DJWTGATE_FUZZ=ON "-DJWTGATE_WERROR=${JWTGATE_FUZZ_WERROR:-ON}")
if [ -n "${JWTGATE_LLHTTP_PREFIX:-}" ]; then cmake_args+=("-DJWTGATE_LLHTTP_PREFIX=$JWTGATE_LLHTTP_PREFIX"); fi
if command -v ccache >/dev/null; then cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# The compiler is chosen when build-fuzz is first configured (CMake keeps it afterwards).
CXX=${JWTGATE_FUZZ_CXX:-clang++-14} cmake -S "$here" -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j "${JWTGATE_FUZZ_BUILD_JOBS:-2}"

mapfile -t all < "$build/fuzzers.txt"
if [ "$list" -eq 1 ]; then printf '%s\n' "${all[@]}"; exit 0; fi
if [ ${#targets[@]} -eq 0 ]; then targets=("${all[@]}"); fi
for t in "${targets[@]}"; do
  printf '%s\n' "${all[@]}" | grep -qx "$t" || { echo "fuzz: no target $t (have: ${all[*]})" >&2; exit 2; }
done

# Leaks count as failures; UBSan stops at the first report (the build also has
# -fno-sanitize-recover) and prints where.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/logs"
summary=()
failed=()
for t in "${targets[@]}"; do
  short=${t#fuzz_}
  seeds="$here/tests/fuzz/corpus/$short"
  work="$build/corpus/$short"
  artifacts="$build/artifacts/$short/"
  log="$build/logs/$t.log"
  mkdir -p "$work" "$artifacts"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048
        -artifact_prefix="$artifacts")
  dict="$here/tests/fuzz/dict/$short.dict"
  if [ -f "$dict" ]; then args+=(-dict="$dict"); fi
  echo "fuzz: $t for ${seconds}s (seeds $seeds, log $log)"
  rc=0
  "$build/tests/fuzz/$t" "${args[@]}" "$work" "$seeds" > "$log" 2>&1 || rc=$?
  # libFuzzer's last status line ("#N DONE cov: C ft: F corp: ...") and final stats.
  last=$(grep -E '^#[0-9]+[[:space:]]+[A-Z]+[[:space:]].*cov: ' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
  execs=$(sed -nE 's/^stat::number_of_executed_units: ([0-9]+)/\1/p' "$log" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: +([0-9]+)/\1/p' "$log" | tail -1)
  status=ok
  if [ "$rc" -ne 0 ]; then
    status="FAILED (exit $rc)"
    failed+=("$t")
    echo "fuzz: $t failed; the end of its log:" >&2
    tail -40 "$log" >&2
  fi
  summary+=("$(printf '%-24s %10s %9s %7s %7s %6s  %s' "$t" "${execs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$status")")
done

echo
printf '%-24s %10s %9s %7s %7s %6s  %s\n' target execs exec/s cov ft corpus result
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (inputs in $build/artifacts/)" >&2
  exit 1
fi
