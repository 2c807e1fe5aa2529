#!/usr/bin/env bash
# make pictures: one short run per experiment, drawn with --svg and rendered
# to docs/<experiment>.png with rsvg-convert (Debian's librsvg2-bin). Needs
# /dev/kvm (root). The README shows these pictures.
set -euo pipefail
cd "$(dirname "$0")/.."
KVMLAB=${KVMLAB:-.build/release/kvmlab}
command -v rsvg-convert >/dev/null || { echo "rsvg-convert is missing: apt-get install librsvg2-bin" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
draw() {
    local name=$1; shift
    "$KVMLAB" "$@" --svg "$out/$name.svg" --quiet > /dev/null
    rsvg-convert -w 1400 -b white -o "docs/$name.png" "$out/$name.svg"
    echo "docs/$name.png ($(stat -c %s "$out/$name.svg") bytes of SVG)"
}
draw jitter jitter -v 2 --duration 3 --warmup 0.5 --host-probe 1
draw dirty-log dirty-log -v 2 -b 128m -i 3 -s anonymous_thp
draw memslot memslot -s 256 --memory 64m -l 0.3 -r 2
draw teardown teardown -v 2 --memory 512m --baseline 0.1
draw populate populate -v 2 -b 128m
draw root-reload root-reload --dirtiers 1 --working-set 16m --duration 1
draw exit-latency exit-latency -n 20000
draw migrate migrate -v 2 --idle-vcpus 1 -b 8m --baseline 0.3 --after 0.3 --bandwidth 20m --auto-converge --throttle-initial 50 --throttle-step 25
draw compare compare jitter --duration 1 --warmup 0.2 --a '' --b '--no-zap-all'
