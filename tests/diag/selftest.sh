#!/usr/bin/env bash
# selftest.sh RUN_DIAG — checks that run_diag.sh fails when it should.
#
# A diagnostic runner that cannot fail proves nothing, so this drives
# run_diag.sh with a stand-in compiler whose stderr and exit status are
# set per case, and checks its verdict: right errors pass; a wrong message,
# a wrong order, a missing or extra error, status 0, 70 or a signal, a
# sanitizer report, or a file without expectations fail.
set -uo pipefail

runner=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/fake-nnc" <<'FAKE'
#!/usr/bin/env bash
printf '%b' "$FAKE_STDERR" >&2
exit "$FAKE_STATUS"
FAKE
chmod +x "$tmp/fake-nnc"

printf 'x = 1\ny = @  # expect: 2:5: error: expected an expression\nz = (\n# expect: 3:6: error: unclosed (\n' \
    >"$tmp/two.nn"
printf 'x = 1\n' >"$tmp/none.nn"
printf '\377\000binary' >"$tmp/bin.nn"
printf '1:2: error: invalid UTF-8\n' >"$tmp/bin.nn.expect"

both='two.nn:2:5: error: expected an expression\n    2 | y = @\n      |     ^\ntwo.nn:3:6: error: unclosed (\n'
failures=0

# case NAME WANT(pass|fail) FILE STATUS STDERR
case_() {
    local name=$1 want=$2 file=$3
    FAKE_STATUS=$4 FAKE_STDERR=$5 bash "$runner" "$tmp/fake-nnc" "$tmp/$file" \
        >"$tmp/out" 2>&1
    local status=$? got=pass
    [ $status -eq 0 ] || got=fail
    if [ "$got" = "$want" ]; then
        echo "ok: $name ($got)"
    else
        echo "FAIL: $name: runner said $got, expected $want" >&2
        cat "$tmp/out" >&2
        failures=$((failures + 1))
    fi
}

case_ "matching errors"        pass two.nn 1 "$both"
case_ "path before the name"   pass two.nn 1 "dir/sub/${both//two.nn:/dir/sub/two.nn:}"
case_ "sidecar .expect"        pass bin.nn 1 'bin.nn:1:2: error: invalid UTF-8\n'
case_ "wrong message"          fail two.nn 1 "${both/unclosed (/unclosed [}"
case_ "wrong column"           fail two.nn 1 "${both/2:5:/2:4:}"
case_ "wrong order"            fail two.nn 1 'two.nn:3:6: error: unclosed (\ntwo.nn:2:5: error: expected an expression\n'
case_ "missing error"          fail two.nn 1 'two.nn:2:5: error: expected an expression\n'
case_ "extra error"            fail two.nn 1 "${both}two.nn:4:1: error: more\n"
case_ "error in another file"  fail two.nn 1 'other.nn:2:5: error: expected an expression\nother.nn:3:6: error: unclosed (\n'
case_ "exit status 0"          fail two.nn 0 "$both"
case_ "usage error"            fail two.nn 2 "$both"
case_ "internal error"         fail two.nn 70 "$both"
case_ "crash"                  fail two.nn 139 "$both"
case_ "sanitizer report"       fail two.nn 1 "${both}==1==ERROR: AddressSanitizer: heap-buffer-overflow\n"
case_ "no expectations"        fail none.nn 1 'none.nn:1:1: error: something\n'

[ $failures -eq 0 ] || { echo "$failures runner check(s) failed" >&2; exit 1; }
