#!/usr/bin/env bash
# run_diag.sh NNC FILE.nn — one diagnostic test.
#
# Runs `NNC check FILE.nn` and passes when
#   - the exit status is 1 (0 means the error was missed; 2 a usage error;
#     70 an internal error and >= 128 a crash are failures whatever printed),
#   - no sanitizer report is on stderr, and
#   - the errors printed, as "LINE:COL: error: MESSAGE" taken from stderr
#     lines "...FILE.nn:LINE:COL: error: MESSAGE", are exactly the expected
#     ones, in order.
# The expected errors are the file's `# expect: LINE:COL: error: MESSAGE`
# comments (anywhere on a line, usually the offending one), or, for a file
# that cannot hold comments (binary, empty), the lines of FILE.nn.expect.
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: run_diag.sh NNC FILE.nn" >&2
    exit 2
fi
nnc=$1
file=$2
base=$(basename "$file")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -f "$file.expect" ]; then
    grep -av '^[[:space:]]*$' "$file.expect" >"$tmp/expected"
else
    sed -n -E 's/^.*#[[:space:]]*expect:[[:space:]]*(.*[^[:space:]])[[:space:]]*$/\1/p' \
        "$file" >"$tmp/expected"
fi
if [ ! -s "$tmp/expected" ]; then
    echo "FAIL: $file has no '# expect:' line and no $base.expect" >&2
    exit 1
fi

(cd "$(dirname "$file")" && "$nnc" check "$base") >"$tmp/stdout" 2>"$tmp/stderr"
status=$?

# The file name as a literal in a sed regex.
quoted=$(printf '%s' "$base" | sed 's/[][\.*^$/]/\\&/g')
sed -n -E "s/^.*${quoted}:([0-9]+:[0-9]+: error: .*)$/\1/p" "$tmp/stderr" >"$tmp/actual"

fail() {
    echo "FAIL: $file: $*" >&2
    echo "--- stderr of nnc check $base (status $status):" >&2
    head -c 20000 "$tmp/stderr" >&2
    exit 1
}

if [ "$status" -ge 128 ]; then
    fail "nnc crashed (status $status)"
elif [ "$status" -eq 70 ]; then
    fail "internal error (status 70)"
elif grep -aqE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/stderr"; then
    fail "sanitizer report"
elif [ "$status" -ne 1 ]; then
    fail "exit status $status, expected 1"
fi
if ! diff -u "$tmp/expected" "$tmp/actual" >"$tmp/diff"; then
    echo "FAIL: $file: errors differ from the expected ones (- expected, + actual):" >&2
    tail -n +3 "$tmp/diff" >&2
    exit 1
fi
echo "ok: $base: $(wc -l <"$tmp/expected") expected error(s)"
