#!/usr/bin/env bash
# run_golden.sh — the conformance models through `nnc check` and `--emit ir`.
#
#   run_golden.sh check NNC MODEL.nn [-D NAME=INT]...
#       passes when `nnc check` exits 0 and prints nothing at all.
#   run_golden.sh ir NNC MODEL.nn EXPECTED.ir [-D NAME=INT]...
#       passes when `nnc MODEL.nn --emit ir` exits 0, prints nothing on
#       stderr, prints the same text twice (dumps are deterministic), and
#       that text equals EXPECTED.ir; then EXPECTED.ir read back with
#       `--ir-in --passes none --emit ir` must print itself (the dump is
#       also an input).  With NNC_REGEN=1 it rewrites EXPECTED.ir instead
#       of comparing (review the diff before committing it).
# nnc runs in the model's directory on the bare file name, so the dumps do
# not depend on where the models are.
set -uo pipefail

if [ $# -lt 3 ] || { [ "$1" = ir ] && [ $# -lt 4 ]; }; then
    echo "usage: run_golden.sh check NNC MODEL [-D N=V]... | ir NNC MODEL EXPECTED [-D N=V]..." >&2
    exit 2
fi
mode=$1 nnc=$2 model=$3
shift 3
if [ "$mode" = ir ]; then
    expected=$1
    shift
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_nnc OUT ARGS...: nnc ARGS in the model's directory; stdout to OUT.
run_nnc() {
    local out=$1
    shift
    (cd "$(dirname "$model")" && "$nnc" "$@") >"$out" 2>"$tmp/stderr"
    local status=$?
    if [ $status -ne 0 ] || [ -s "$tmp/stderr" ]; then
        echo "FAIL: nnc $* (in $(dirname "$model")): status $status, expected 0 and no stderr" >&2
        head -c 20000 "$tmp/stderr" >&2
        exit 1
    fi
}

name=$(basename "$model")
if [ "$mode" = check ]; then
    run_nnc "$tmp/stdout" check "$name" "$@"
    if [ -s "$tmp/stdout" ]; then
        echo "FAIL: nnc check $name $*: printed on stdout:" >&2
        head -c 2000 "$tmp/stdout" >&2
        exit 1
    fi
    echo "ok: nnc check $name $*"
    exit 0
fi

run_nnc "$tmp/first.ir" "$name" --emit ir "$@"
run_nnc "$tmp/second.ir" "$name" --emit ir "$@"
if ! cmp -s "$tmp/first.ir" "$tmp/second.ir"; then
    echo "FAIL: nnc $name --emit ir $*: two runs printed different IR:" >&2
    diff -u "$tmp/first.ir" "$tmp/second.ir" | head -40 >&2
    exit 1
fi
if [ ! -s "$tmp/first.ir" ]; then
    echo "FAIL: nnc $name --emit ir $*: printed nothing" >&2
    exit 1
fi
if [ "${NNC_REGEN:-0}" = 1 ]; then
    cp "$tmp/first.ir" "$expected"
    echo "regenerated $expected ($(wc -l <"$expected") lines)"
    exit 0
fi
if [ ! -f "$expected" ]; then
    echo "FAIL: no $expected; create it with: NNC_REGEN=1 ctest -R golden/" >&2
    exit 1
fi
if ! diff -u "$expected" "$tmp/first.ir" >"$tmp/diff"; then
    echo "FAIL: nnc $name --emit ir $* differs from $expected (- expected, + actual);" >&2
    echo "if the change is intended, rerun with NNC_REGEN=1 and review the diff:" >&2
    head -200 "$tmp/diff" >&2
    exit 1
fi

(cd "$(dirname "$expected")" && "$nnc" "$(basename "$expected")" --ir-in --passes none \
    --emit ir) >"$tmp/reread.ir" 2>"$tmp/stderr"
status=$?
if [ $status -ne 0 ] || [ -s "$tmp/stderr" ] || ! cmp -s "$expected" "$tmp/reread.ir"; then
    echo "FAIL: nnc $(basename "$expected") --ir-in --passes none --emit ir (status $status)" >&2
    echo "does not print the file it read (- file, + printed):" >&2
    head -c 20000 "$tmp/stderr" >&2
    diff -u "$expected" "$tmp/reread.ir" | head -100 >&2
    exit 1
fi
echo "ok: nnc $name --emit ir $* matches $(basename "$expected"), which reads back"
