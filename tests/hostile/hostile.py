#!/usr/bin/env python3
"""hostile.py — malformed and oversized inputs for `nnc check`.

    hostile.py --list                       the case names, one a line
    hostile.py NNC CASE WORKDIR [--asan]    generate CASE and check nnc on it

Each case is generated at test time (nothing large is committed; random
bytes come from a fixed seed) and run as `nnc check FILE` with a 20 s time
limit and, unless the binary is built with ASan (which reserves terabytes of
virtual address space), a 2 GiB address-space limit.  The test passes when
nnc exits with an allowed status (1, or 0 for an input that may be valid),
and, on 1, prints a located error `FILE:LINE:COL: error: ...`; it fails on a
crash, a timeout, status 70 (internal error) or 2, a sanitizer report, or
more than 100 KB of diagnostics (the error cap and the cut source lines
keep them short).  Uses the standard library only.
"""
import os
import random
import re
import resource
import subprocess
import sys

TIME_LIMIT_S = 20
MEMORY_LIMIT = 2 << 30
MAX_STDERR = 100_000

MODEL = b"""model m
dim B = 4
input x : f32[B, 8]
param W : f32[8, 8] = zeros
h = relu(x @ W)
output h
"""


def chain(n_lines):
    """A valid model of n_lines lines: one binding per line, short enough
    to stay under the front end's cap of 500,000 tokens a file."""
    steps = (b"y = y + x\n", b"y = -y\n")
    body = b"".join(steps[i % 2] for i in range(n_lines - 3))
    return b"input x : f32[4]\ny = x\n" + body + b"output y\n"


def one_long_line(size):
    """About `size` bytes of valid statements on one line, no newline."""
    terms = b" + x" * ((size - 40) // 4)
    return b"input x : f32[4]; y = x" + terms + b"; output y"


def nested(opening, closing, depth):
    return (b"input x : f32[4]\ny = " + opening * depth + b"x" + closing * depth
            + b"\noutput y\n")


# name -> (generator, allowed exit statuses)
CASES = {
    "empty": (lambda: b"", {1}),
    "random_bytes": (lambda: random.Random(20240601).randbytes(64 * 1024), {1}),
    "nul_bytes": (lambda: MODEL.replace(b"relu", b"re\0lu").replace(b"dim", b"\0dim"), {1}),
    "invalid_utf8": (lambda: b"# caf\xc3\x28 \xff\xfe\n" + MODEL, {1}),
    "utf8_overlong": (lambda: MODEL.replace(b"h = ", b"h\xc0\xaf = "), {1}),
    "long_line_1mb": (lambda: one_long_line(1 << 20), {0, 1}),
    "long_identifier_1mb": (lambda: MODEL.replace(b"h", b"h" * (1 << 20)), {0, 1}),
    "nested_parens_10000": (lambda: nested(b"(", b")", 10000), {0, 1}),
    "nested_calls_10000": (lambda: nested(b"relu(", b")", 10000), {0, 1}),
    "nested_brackets_10000": (lambda: nested(b"[", b"]", 10000), {1}),
    "nested_mixed_unclosed": (lambda: b"y = " + b"([{" * 20000, {1}),
    "unary_minus_100000": (lambda: nested(b"-", b"", 100000), {0, 1}),
    "lines_100000": (lambda: chain(100000), {0}),
    "errors_10000": (lambda: b"y = @\n" * 10000, {1}),
    "huge_integer": (lambda: b"dim B = " + b"9" * 5000 + b"\n" + MODEL, {1}),
    "huge_tensor": (lambda: MODEL.replace(b"dim B = 4", b"dim B = 4611686018427387904"), {1}),
    "unterminated_block": (lambda: MODEL + b"fn f(a) {\n" + b"  b = a\n" * 10000, {1}),
}

LOCATED = re.compile(rb"^(.*):(\d+):(\d+): error: \S", re.M)


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def check(nnc, name, workdir, asan):
    make, allowed = CASES[name]
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, name + ".nn")
    with open(path, "wb") as f:
        f.write(make())
    try:
        proc = subprocess.run([nnc, "check", path], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=TIME_LIMIT_S,
                              preexec_fn=None if asan else limit_memory)
    except subprocess.TimeoutExpired:
        return f"no answer within {TIME_LIMIT_S} s"
    status, err = proc.returncode, proc.stderr
    print(f"{name}: {os.path.getsize(path)} bytes, exit status {status}, "
          f"{len(err)} bytes of diagnostics")
    sys.stdout.buffer.write(err[:1500])
    if status < 0:
        return f"killed by signal {-status}"
    if re.search(rb"ERROR: (Address|Leak)Sanitizer|runtime error:", err):
        return "sanitizer report"
    if status not in allowed:
        return f"exit status {status}, expected one of {sorted(allowed)}"
    if len(err) > MAX_STDERR:
        return f"{len(err)} bytes of diagnostics, more than {MAX_STDERR}"
    if status == 0:
        return "printed on stderr although it accepted the input" if err else None
    located = [m for m in LOCATED.finditer(err) if m.group(1) == path.encode()]
    if not located:
        return f"no located error '{path}:LINE:COL: error: ...'"
    if name == "empty" and located[0].group(2, 3) != (b"1", b"1"):
        return "the error of an empty file must be at 1:1"
    return None


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(CASES))
        return 0
    if len(sys.argv) not in (4, 5) or sys.argv[2] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    nnc, name, workdir = sys.argv[1:4]
    problem = check(nnc, name, workdir, asan="--asan" in sys.argv[4:])
    if problem:
        print(f"FAIL: hostile/{name}: {problem}", file=sys.stderr)
        return 1
    print(f"ok: hostile/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
