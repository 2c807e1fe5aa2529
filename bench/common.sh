# What the bench scripts share, sourced from the repository root (each
# script changes there first): the binary under test, the output folder, a
# checked reading of numeric settings, and building the C references.
KVMLAB=${KVMLAB:-.build/release/kvmlab}
OUT=bench/out
mkdir -p "$OUT"

# setting NAME DEFAULT MIN MAX: NAME from the environment (DEFAULT if
# unset), a whole number from MIN to MAX; anything else (0, -1, inf, nan,
# 1e30, 2^63) is one line on stderr and exit 2.
setting() {
    local name=$1 value=${!1:-$2}
    if ! [[ $value =~ ^[0-9]{1,18}$ ]] || (( 10#$value < $3 || 10#$value > $4 )); then
        echo "bench: $name=$value: must be a whole number from $3 to $4" >&2
        exit 2
    fi
    printf -v "$name" '%d' "$((10#$value))"
}

# fresh_out NAME: OUT becomes an empty bench/out/NAME for this script's files.
fresh_out() {
    OUT=bench/out/$1
    rm -rf "$OUT" && mkdir -p "$OUT"
}

# build_c NAME [FLAGS...]: bench/NAME.c into $OUT/NAME, unless that binary is
# newer than its sources (make bench runs several scripts that use it).
build_c() {
    local name=$1 binary="$OUT/$1"
    shift
    if [ -x "$binary" ] && [ "$binary" -nt "bench/$name.c" ] && [ "$binary" -nt bench/long_mode.h ]; then return; fi
    cc -O2 -Wall "$@" -o "$binary" "bench/$name.c"
}
