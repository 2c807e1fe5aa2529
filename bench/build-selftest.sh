#!/usr/bin/env bash
# Builds one of the kernel's KVM selftests (default dirty_log_perf_test) from
# Debian's linux-source-6.12 (bookworm's security suite: its selftests run on
# kvm_pvm, 6.1's fail at the first guest sync) into bench/out/selftest/, for
# side-by-side runs. Usage: build-selftest.sh [NAME]. Nothing of it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$PWD/bench/out/selftest"
NAME=${1:-dirty_log_perf_test}
BIN="$OUT/$NAME"
[ -x "$BIN" ] && { echo "$BIN"; exit 0; }
mkdir -p "$OUT"
VERSION=${SELFTEST_KERNEL:-6.12}
tarball=/usr/src/linux-source-$VERSION.tar.xz
if [ ! -f "$tarball" ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "linux-source-$VERSION" >&2
fi
src="$OUT/src-$VERSION"
if [ ! -d "$src" ]; then
    mkdir -p "$src"
    # Only what the selftests and `make headers` need.
    tar -xJf "$tarball" -C "$src" --strip-components=1 --wildcards \
        '*/Makefile' '*/scripts/*' '*/include/*' '*/arch/x86/*' '*/tools/*' '*/usr/*' '*/Kbuild' '*/Kconfig*' >&2
fi
make -C "$src" headers >/dev/null 2>&1 || make -C "$src" headers >&2
make -C "$src/tools/testing/selftests/kvm" -j"$(nproc)" "$src/tools/testing/selftests/kvm/$NAME" >&2 \
    || make -C "$src/tools/testing/selftests/kvm" -j"$(nproc)" >&2
cp "$(find "$src/tools/testing/selftests/kvm" -name "$NAME" -type f -perm -u+x | head -1)" "$BIN"
echo "$BIN"
