#!/usr/bin/env bash
# Proves the durability tests can fail: builds a scratch copy of HEAD (a git
# worktree under /tmp), removes one durability step at a time (a sync
# skipped, a reply sent before its flush, the tail word written before the
# records, a directory fsync skipped, a sync of the memory node's plain or
# secure flush path skipped), and runs the tests that must catch it. The
# process-* and page/pool mutants are caught by whole-process power-cut
# tests (cosmos-kv, cosmosd on the FUSE cosmos-powercut-fs; they need root
# and /dev/fuse, else they skip and the mutant shows as MISSED).
# Every mutant must make them fail ("caught"); a mutant the tests survive is
# "MISSED" and the script exits 1. docs/testing.md lists the mutants.
#
#   scripts/mutation_check.sh            all mutants
#   scripts/mutation_check.sh NAME...    only these (CI's reduced form)
#   scripts/mutation_check.sh --list     names and what each removes
#   COSMOS_JOBS=N                        build jobs (default 2)
#   COSMOS_MUTATION_KEEP=1               keep the scratch worktree
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${COSMOS_JOBS:-2}

# name | file | text to find (exactly once) | replacement | targets | ctest regex
# Fields are separated by " | "; "\n" in the texts stands for a newline.
MUTANTS=$(cat <<'EOF'
file-flush-no-fdatasync | src/kv/log_device_file.cc | COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));\n  if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, "fdatasync log file " + path_); | COSMOS_RETURN_IF_ERROR(CheckRange(offset, len)); | kv_device_test | ^StorePowerLoss\.File
pool-flush-no-persist | src/kv/log_device_pool.cc | return region_.Persist(offset, len); | return Status::Ok(); | kv_device_test | ^StorePowerLoss\.Pool
remote-flush-not-sent | src/kv/log_device_remote.cc | Op op{.kind = Op::Kind::kFlush, .offset = offset, .len = len};\n  return Submit(&op); | return Status::Ok(); | kv_device_test | ^StorePowerLoss\.Remote
store-commit-no-flush | src/kv/store.cc | if (s.ok()) s = device_->Flush(inflight_start_, inflight_.size()); | (void)0; | kv_test kv_device_test | ^StoreCrash\.|^StorePowerLoss\.
store-tail-before-records | src/kv/store.cc | Status s = device_->Write(inflight_start_, inflight_.data(), inflight_.size());\n    if (s.ok()) s = device_->Flush(inflight_start_, inflight_.size());\n    const uint64_t tail_value = end - RecordBase(half);\n    if (s.ok()) s = device_->Write(TailWordOffset(half), &tail_value, sizeof(tail_value)); | const uint64_t tail_value = end - RecordBase(half);\n    Status s = device_->WriteAfterFlush(TailWordOffset(half), tail_value);\n    if (s.ok()) s = device_->Write(inflight_start_, inflight_.data(), inflight_.size());\n    if (s.ok()) s = device_->Flush(inflight_start_, inflight_.size()); | kv_test kv_device_test | ^StoreCrash\.|^StorePowerLoss\.
server-reply-before-flush | src/kv/server.cc | if (c->pending_seq <= durable) {\n    Release(c, durable); | if (true) {\n    Release(c, durable); | kv_test | ^ServerFixture\.
file-create-no-dir-fsync | src/kv/log_device_file.cc | if (Status s = SyncDirectoryOf(path); !s.ok()) { | if (Status s = Status::Ok(); !s.ok()) { | kv_device_test | ^FileLogDevice\.
counter-no-dir-fsync | src/sec/counter_simulated.cc | COSMOS_RETURN_IF_ERROR(SyncDirectoryOf(options_.path)); | (void)0; | dir_sync_test | ^SimulatedCounterDirectorySync\.
server-flush-no-persist | src/server/server.cc | COSMOS_RETURN_IF_ERROR(region.Persist(ranges[0].offset, ranges[0].length)); | (void)0; | server_power_loss_test | ServerPowerLossTest\.
server-flush-no-drain | src/server/server.cc | if (any) COSMOS_RETURN_IF_ERROR(region.Drain()); | (void)any; | server_power_loss_test | ServerPowerLossTest\.
server-atomic-no-persist | src/server/server.cc | COSMOS_RETURN_IF_ERROR(region.Persist(op.offset, 8)); | (void)0; | server_power_loss_test | ServerPowerLossTest\.
secure-store-no-drain | src/server/pmem_untrusted_store.cc | return any ? region_->Drain() : Status::Ok(); | return any ? Status::Ok() : Status::Ok(); | server_power_loss_test | ServerPowerLossTest\.
secure-commit-no-data-persist | src/sec/protected_region.cc | ++stats.persists;\n      COSMOS_RETURN_IF_ERROR(store->Persist(ranges));\n    }\n    COSMOS_RETURN_IF_ERROR(WriteSlot( | ++stats.persists;\n    }\n    COSMOS_RETURN_IF_ERROR(WriteSlot( | server_power_loss_test | ServerPowerLossTest\.
secure-commit-no-record-persist | src/sec/protected_region.cc | ++stats.persists;\n    return store->Persist({&r, 1}); | ++stats.persists;\n    (void)r;\n    return Status::Ok(); | server_power_loss_test | ServerPowerLossTest\.
process-file-no-fdatasync | src/kv/log_device_file.cc | COSMOS_RETURN_IF_ERROR(CheckRange(offset, len));\n  if (::fdatasync(fd_) != 0) return Status::FromErrno(errno, "fdatasync log file " + path_); | COSMOS_RETURN_IF_ERROR(CheckRange(offset, len)); | kv_power_cut_test | ^KvPowerCut\.File
process-file-create-no-dir-fsync | src/kv/log_device_file.cc | if (Status s = SyncDirectoryOf(path); !s.ok()) { | if (Status s = Status::Ok(); !s.ok()) { | kv_power_cut_test | ^KvPowerCut\.File
process-pool-flush-no-persist | src/kv/log_device_pool.cc | return region_.Persist(offset, len); | return Status::Ok(); | kv_power_cut_test | ^KvPowerCut\.Pool
page-mapping-no-msync | src/pmem/mapping_file.cc | if (msync(base() + aligned, end - aligned, MS_SYNC) != 0) { | if ((void)aligned, false) { | kv_power_cut_test | ^KvPowerCut\.Pool
pool-create-no-dir-fsync | src/pmem/pool.cc | COSMOS_RETURN_IF_ERROR(SyncDirectoryOf(path));  // the new name survives a crash | (void)0; | kv_power_cut_test | ^KvPowerCut\.Pool
process-server-flush-no-persist | src/server/server.cc | COSMOS_RETURN_IF_ERROR(region.Persist(ranges[0].offset, ranges[0].length)); | (void)0; | rpm_power_cut_test | RpmPowerCut\..*/Plain
process-secure-store-no-drain | src/server/pmem_untrusted_store.cc | return any ? region_->Drain() : Status::Ok(); | return any ? Status::Ok() : Status::Ok(); | rpm_power_cut_test | RpmPowerCut\..*/Secure
process-node-page-no-msync | src/pmem/mapping_file.cc | if (msync(base() + aligned, end - aligned, MS_SYNC) != 0) { | if ((void)aligned, false) { | rpm_power_cut_test | RpmPowerCut\.
process-file-create-no-fsync | src/kv/log_device_file.cc | if (::fsync(fd) != 0) return fail(errno, "fsync new log file"); | (void)0; | kv_power_cut_test | ^KvPowerCut\.File
process-store-tail-before-records | src/kv/store.cc | Status s = device_->Write(inflight_start_, inflight_.data(), inflight_.size());\n    if (s.ok()) s = device_->Flush(inflight_start_, inflight_.size());\n    const uint64_t tail_value = end - RecordBase(half);\n    if (s.ok()) s = device_->Write(TailWordOffset(half), &tail_value, sizeof(tail_value)); | const uint64_t tail_value = end - RecordBase(half);\n    Status s = device_->WriteAfterFlush(TailWordOffset(half), tail_value);\n    if (s.ok()) s = device_->Write(inflight_start_, inflight_.data(), inflight_.size());\n    if (s.ok()) s = device_->Flush(inflight_start_, inflight_.size()); | kv_power_cut_test | ^KvPowerCut\.
process-server-flush-no-drain | src/server/server.cc | if (any) COSMOS_RETURN_IF_ERROR(region.Drain()); | (void)any; | rpm_power_cut_test | RpmPowerCut\..*/Plain
process-server-atomic-no-persist | src/server/server.cc | COSMOS_RETURN_IF_ERROR(region.Persist(op.offset, 8)); | (void)0; | rpm_power_cut_test | RpmPowerCut\..*/Plain
EOF
)

field() { awk -F' [|] ' -v n="$2" '{print $n}' <<<"$1"; }

if [ "${1:-}" = "--list" ]; then
  while IFS= read -r m; do
    printf '%-28s %s: %s\n' "$(field "$m" 1)" "$(field "$m" 2)" "$(field "$m" 3 | cut -c1-70)"
  done <<<"$MUTANTS"
  exit 0
fi

selected=("$@")
is_selected() {
  [ ${#selected[@]} -eq 0 ] && return 0
  local s
  for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

SCRATCH=$(mktemp -d /tmp/cosmos-mutants.XXXXXX)
cleanup() {
  if [ "${COSMOS_MUTATION_KEEP:-0}" != "1" ]; then
    git -C "$ROOT" worktree remove --force "$SCRATCH/src" >/dev/null 2>&1
    rm -rf "$SCRATCH"
  fi
}
trap cleanup EXIT
# Retried: another git command in the same repository may hold its lock.
for attempt in 1 2 3 4 5 6; do
  git -C "$ROOT" worktree add --detach "$SCRATCH/src" HEAD >"$SCRATCH/worktree.log" 2>&1 && break
  if [ "$attempt" -eq 6 ]; then
    echo "mutation_check: cannot create a worktree of HEAD:"
    cat "$SCRATCH/worktree.log"
    exit 2
  fi
  sleep 2
done
W=$SCRATCH/src
B=$SCRATCH/build
# Paths relative to the scratch directory, so ccache reuses objects across
# runs (each run has a new scratch directory).
export CCACHE_BASEDIR=$SCRATCH CCACHE_NOHASHDIR=1
echo "mutation_check: scratch copy of $(git -C "$ROOT" rev-parse --short HEAD) in $W"
cmake -S "$W" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOSMOS_BUILD_BENCH=OFF \
  >"$SCRATCH/configure.log" 2>&1 || { echo "mutation_check: configure failed"; exit 2; }

# run_tests TARGETS REGEX LOG: builds the targets and runs the matching tests;
# prints pass, fail or build-error.
run_tests() {
  local targets=$1 regex=$2 log=$3
  # shellcheck disable=SC2086
  if ! cmake --build "$B" -j"$JOBS" --target $targets >"$log" 2>&1; then
    echo build-error
    return
  fi
  if ctest --test-dir "$B" -R "$regex" --no-tests=error --output-on-failure -j"$JOBS" \
    >>"$log" 2>&1; then
    echo pass
  else
    echo fail
  fi
}

# mutate FILE FIND REPLACE: replaces the one occurrence of FIND ("\n" = newline).
mutate() {
  FILE="$W/$1" FIND="$2" REPLACE="$3" python3 - <<'PY'
import os, sys
path, find, repl = os.environ["FILE"], os.environ["FIND"], os.environ["REPLACE"]
find, repl = find.replace("\\n", "\n"), repl.replace("\\n", "\n")
text = open(path).read()
if text.count(find) != 1:
    print(f"mutant does not apply: {text.count(find)} matches in {path}", file=sys.stderr)
    sys.exit(1)
open(path, "w").write(text.replace(find, repl))
PY
}

caught=0
missed=0
broken=0
results=()
while IFS= read -r m; do
  name=$(field "$m" 1); file=$(field "$m" 2); find=$(field "$m" 3)
  repl=$(field "$m" 4); targets=$(field "$m" 5); regex=$(field "$m" 6)
  is_selected "$name" || continue
  log="$SCRATCH/$name"
  # The unmutated tests must pass first, or a "caught" would mean nothing.
  baseline=$(run_tests "$targets" "$regex" "$log.baseline.log")
  if [ "$baseline" != pass ]; then
    echo "mutation_check: $name: the unmutated tests do not pass ($baseline; $log.baseline.log)"
    results+=("$name: BASELINE $baseline")
    broken=$((broken + 1))
    continue
  fi
  if ! mutate "$file" "$find" "$repl"; then
    results+=("$name: DOES NOT APPLY (update the mutant)")
    broken=$((broken + 1))
    continue
  fi
  outcome=$(run_tests "$targets" "$regex" "$log.log")
  git -C "$W" checkout -- "$file"
  case $outcome in
    fail)
      caught=$((caught + 1))
      failing=$(grep -E '^\s+[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Exception)' \
        "$log.log" | sed -E 's/^\s+[0-9]+ - ([^ ]+).*/\1/')
      results+=("$name: caught by $(wc -l <<<"$failing") failing test(s): $(head -n 3 <<<"$failing" |
        paste -sd, -)")
      ;;
    pass)
      missed=$((missed + 1))
      results+=("$name: MISSED (tests $regex still pass)")
      ;;
    *)
      broken=$((broken + 1))
      results+=("$name: BUILD ERROR with the mutant ($log.log)")
      ;;
  esac
  echo "mutation_check: ${results[-1]}"
done <<<"$MUTANTS"

echo "--- mutation_check results"
printf '  %s\n' "${results[@]}"
echo "mutation_check: $((caught + missed + broken)) mutants, $caught caught, $missed missed," \
  "$broken not run"
[ "$missed" -eq 0 ] && [ "$broken" -eq 0 ] && [ "$caught" -gt 0 ]
