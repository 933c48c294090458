#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of COSMOS from Debian 12
# packages. Idempotent: quiet and fast when everything is already installed.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev libbenchmark-dev
  libpmem2-dev libpmem-dev
  libssl-dev libcurl4-openssl-dev
  libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libxxhash-dev liburing-dev
  clang libclang-rt-14-dev clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  redis-server redis-tools
  prometheus-cpp-dev  # cosmosd --metrics-listen (Prometheus exporter; optional at build time)
  etcd-server etcd-client
  iproute2 python3 procps ccache valgrind
  zsh dpkg-dev systemd  # completion syntax check, cpack DEB (dpkg-shlibdeps), systemd-analyze verify
  libfuse3-dev fuse3  # the power-cut file system of the whole-process power-loss tests
  python3-redis  # differential tests of cosmos-kv through a real client library
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: not root and no sudo; install manually: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# redis-server's package starts a system instance on 6379; COSMOS tests and
# benchmarks start their own on private ports, so stop the system one quietly.
# etcd-server's likewise starts one on 2379; the cluster tests start their own.
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop redis-server >/dev/null 2>&1 || true; fi
if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop etcd >/dev/null 2>&1 || true; fi
echo "setup: done"
