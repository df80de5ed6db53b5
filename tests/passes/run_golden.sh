#!/usr/bin/env bash
# run_golden.sh NNC FILE.ir PASS — one golden pass test.
#
# Runs `NNC --ir-in FILE.ir --passes PASS --verify-each --emit ir` (PASS
# "pipeline": the whole pipeline instead of --passes) and passes when nnc
# exits 0, prints nothing on stderr, and prints exactly FILE.expected (the
# file beside FILE.ir with that extension).  The output is also fed through
# the same pass again and must not change: CSE and DCE leave nothing for a
# second run, and a golden file that is not a fixed point hides a bug.
# With NNC_REGEN=1 the script rewrites FILE.expected instead (review the
# diff before committing it).
set -uo pipefail

if [ $# -ne 3 ]; then
    echo "usage: run_golden.sh NNC FILE.ir PASS" >&2
    exit 2
fi
nnc=$1 input=$2 pass=$3
expected=${input%.ir}.expected
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ "$pass" = pipeline ]; then
    pass_args=()
else
    pass_args=(--passes "$pass")
fi

# run_pass IN OUT: the pass on IN, its IR to OUT; fails the test on any
# status but 0 or on any message.
run_pass() {
    "$nnc" --ir-in "$1" "${pass_args[@]}" --verify-each --emit ir >"$2" 2>"$tmp/stderr"
    local status=$?
    if [ $status -ne 0 ] || [ -s "$tmp/stderr" ]; then
        echo "FAIL: nnc --ir-in $1 ${pass_args[*]} --verify-each --emit ir:" \
             "status $status, expected 0 and no stderr" >&2
        head -c 20000 "$tmp/stderr" >&2
        exit 1
    fi
}

run_pass "$input" "$tmp/out.ir"
if [ "${NNC_REGEN:-0}" = 1 ]; then
    cp "$tmp/out.ir" "$expected"
    echo "regenerated $expected ($(wc -l <"$expected") lines)"
    exit 0
fi
if [ ! -f "$expected" ]; then
    echo "FAIL: no $expected; create it with: NNC_REGEN=1 ctest -R passes/" >&2
    exit 1
fi
if ! diff -u "$expected" "$tmp/out.ir" >"$tmp/diff"; then
    echo "FAIL: $pass on $(basename "$input") differs from $(basename "$expected")" \
         "(- expected, + actual); if intended, rerun with NNC_REGEN=1 and review:" >&2
    head -200 "$tmp/diff" >&2
    exit 1
fi
run_pass "$tmp/out.ir" "$tmp/again.ir"
if ! diff -u "$tmp/out.ir" "$tmp/again.ir" >"$tmp/diff"; then
    echo "FAIL: running $pass again on its own output changed it:" >&2
    head -100 "$tmp/diff" >&2
    exit 1
fi
echo "ok: $pass on $(basename "$input") matches $(basename "$expected")"
