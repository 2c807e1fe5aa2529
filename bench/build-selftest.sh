#!/usr/bin/env bash
# Builds one of the kernel's KVM selftests (default dirty_log_perf_test) from
# Debian's linux-source package into bench/out/selftest/, for side-by-side
# runs. Usage: build-selftest.sh [NAME]. Nothing of it is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$PWD/bench/out/selftest"
NAME=${1:-dirty_log_perf_test}
BIN="$OUT/$NAME"
[ -x "$BIN" ] && { echo "$BIN"; exit 0; }
mkdir -p "$OUT"
if ! ls /usr/src/linux-source-*.tar.xz >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-source >&2
fi
tarball=$(ls /usr/src/linux-source-*.tar.xz | sort -V | tail -1)
src="$OUT/src"
if [ ! -d "$src" ]; then
    mkdir -p "$src"
    # Only what the selftests and `make headers` need.
    tar -xJf "$tarball" -C "$src" --strip-components=1 --wildcards \
        '*/Makefile' '*/scripts/*' '*/include/*' '*/arch/x86/*' '*/tools/*' '*/usr/*' '*/Kbuild' '*/Kconfig*' >&2
fi
make -C "$src" headers >/dev/null 2>&1 || make -C "$src" headers >&2
make -C "$src/tools/testing/selftests/kvm" -j"$(nproc)" "$PWD/bench/out/selftest/src/tools/testing/selftests/kvm/$NAME" >&2 \
    || make -C "$src/tools/testing/selftests/kvm" -j"$(nproc)" >&2
cp "$(find "$src/tools/testing/selftests/kvm" -name "$NAME" -type f -perm -u+x | head -1)" "$BIN"
echo "$BIN"
