#!/usr/bin/env bash
# CI entry point of the interop harness (called from .ci/run as root with CI=true on a fresh
# Debian 12 machine): installs the host packages, builds the bookworm and trixie guest images,
# then runs every interop scenario with PPP_INTEROP_REQUIRED=1 so that a scenario that cannot
# run fails instead of skipping. Exits non-zero when anything fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

host_packages=(qemu-system-x86 ipxe-qemu cpio kmod binutils xz-utils zstd gzip
    debian-archive-keyring ca-certificates iproute2 ppp pppoe)

if [ "$(id -u)" = 0 ]; then
    echo "interop/ci.sh: installing host packages: ${host_packages[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${host_packages[@]}"
else
    echo "interop/ci.sh: not root: assuming the host packages are installed (${host_packages[*]})" >&2
fi

suites=(bookworm trixie)
if [ -n "${PPP_INTEROP_SUITES:-}" ]; then
    IFS=', ' read -r -a suites <<<"$PPP_INTEROP_SUITES"
fi
for suite in "${suites[@]}"; do
    start=$(date +%s)
    bash interop/build-guest.sh "$suite"
    echo "interop/ci.sh: $suite image ready in $(($(date +%s) - start)) s"
done

start=$(date +%s)
PPP_INTEROP_REQUIRED=1 PPP_INTEROP_REUSE_IMAGES=1 cargo test -p ppp-interop -- --test-threads="${PPP_INTEROP_JOBS:-2}"
echo "interop/ci.sh: interop tests finished in $(($(date +%s) - start)) s"
