#!/usr/bin/env bash
# The COSMOS demo: installs dependencies, builds, and runs the main job.
# Today: a local pool with regions, written, persisted, reopened and shown.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
if [ ! -x build/apps/cosmos/cosmos ]; then
  echo "demo: the admin CLI (apps/cosmos) is not built yet; nothing to show" >&2
  exit 1
fi
