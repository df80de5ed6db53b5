#!/usr/bin/env bash
# mpi_test.sh CASE — one data-parallel test (ctest mpi/CASE, registered by
# tests/mpi/CMakeLists.txt from the case_NAME functions below).
#
# Runs dp_test (dp_test.c) or the digits example under mpirun with 2 ranks
# on this machine.  Open MPI refuses to run as root and to put more ranks
# than cores on a host unless told: OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM) and
# --oversubscribe.  Environment: MPIEXEC, DP_TEST, TRAIN_DIGITS,
# NNC_DIGITS (the data file; the example's case is skipped without it),
# NNC_MPI_TEST_TMP, NNC_SOURCE_DIR; for the api case MPICC, NNC_MPI_SO,
# NNC_MPI_A, NNCRT_SO, NNC_MPI_TEST_BIN (digits.o and digits.h); for the
# install case CMAKE_COMMAND and NNC_BUILD_DIR.  Status 77 is a skip.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: mpi_test.sh CASE" >&2
    exit 2
fi
case=$1
mkdir -p "$NNC_MPI_TEST_TMP"
tmp=$(mktemp -d "$NNC_MPI_TEST_TMP/$case.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_base_warn_component_unused=0
# one pool thread per rank: two ranks share this machine's cores
export NNC_NUM_THREADS=1

fail() {
    echo "FAIL: mpi/$case: $*" >&2
    exit 1
}

say() {
    echo "+ $*" >&2
    "$@"
}

# mpi NP CMD...: run CMD on NP ranks of this host, stdout+stderr in
# $tmp/out; sets $rc and $elapsed (seconds, 2 decimals).  `timeout` bounds
# a broken test; a hang the library should end is caught by $elapsed.
mpi() {
    local np=$1
    shift
    echo "+ mpirun -np $np $*" >&2
    local t0 t1
    t0=$(date +%s.%N)
    timeout --kill-after=5 50 "$MPIEXEC" --oversubscribe -np "$np" "$@" >"$tmp/out" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    cat "$tmp/out"
    echo "(status $rc after $elapsed s)"
}

# below A B: succeeds when the number A < B.
below() {
    awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'
}

expect_passed() {
    [ "$rc" -eq 0 ] || fail "status $rc"
    grep -q "^dp_test $1: passed$" "$tmp/out" || fail "no 'dp_test $1: passed'"
}

case_equivalence() {
    mpi 2 "$DP_TEST" equivalence
    expect_passed equivalence
    [ "$(grep -c 'params rel' "$tmp/out")" -eq 4 ] || fail "not 4 runs"
}

case_mismatch() {
    mpi 2 "$DP_TEST" mismatch
    expect_passed mismatch
}

case_data_error() {
    mpi 2 "$DP_TEST" data_error
    expect_passed data_error
}

# train NAME ARGS...: 2 ranks of `dp_test train ARGS`.
train() {
    mpi 2 "$DP_TEST" train "$@"
}

# A straight run's checkpoint after 4 steps, the reference for the others.
reference_at_4() {
    train --steps 4 --final "$tmp/ref4.ckpt"
    expect_passed train
}

# The checkpoint of an interrupted run: loads alone, is at step 4, and is
# byte for byte the straight run's.
check_last_checkpoint() {
    say "$DP_TEST" verify "$tmp/run.ckpt" 4 || fail "the last checkpoint is not intact at step 4"
    cmp "$tmp/run.ckpt" "$tmp/ref4.ckpt" || fail "the checkpoint differs from a straight run's"
    ls -a "$tmp" | grep -q '\.tmp-' && fail "a temporary checkpoint file was left behind"
    return 0
}

case_kill() {
    reference_at_4
    train --steps 10 --ckpt "$tmp/run.ckpt" --every 2 --kill-at 5
    [ "$rc" -ne 0 ] || fail "status 0 after a rank was killed"
    grep -qi "signal 9\|killed" "$tmp/out" || fail "no message about the killed rank"
    below "$elapsed" 30 || fail "took $elapsed s (limit 30 s)"
    check_last_checkpoint
    # resume on 2 ranks from it: exactly the straight run's 10 steps
    train --steps 10 --resume "$tmp/run.ckpt" --final "$tmp/resumed.ckpt"
    expect_passed train
    grep -q "resumed at step 4" "$tmp/out" || fail "did not resume at step 4"
    train --steps 10 --final "$tmp/straight.ckpt"
    expect_passed train
    cmp "$tmp/resumed.ckpt" "$tmp/straight.ckpt" ||
        fail "resumed training differs from straight training"
    echo "resumed at step 4 == straight run after 10 steps (checkpoints identical)"
}

case_hang() {
    reference_at_4
    NNC_MPI_TIMEOUT=3 train --steps 10 --ckpt "$tmp/run.ckpt" --every 2 --hang-at 5
    [ "$rc" -eq 124 ] || fail "status $rc, not 124 (MPI_Abort after the timeout)"
    grep -q "nnc_mpi: rank 0 of 2: timed out after 3 s waiting for the other ranks in the gradient all-reduce" \
        "$tmp/out" || fail "no timeout message from rank 0"
    below "$elapsed" 30 || fail "took $elapsed s (limit 30 s)"
    check_last_checkpoint
}

case_example_digits() {
    [ -f "$NNC_DIGITS" ] || {
        echo "no $NNC_DIGITS: skipped"
        exit 77
    }
    mpi 2 "$TRAIN_DIGITS" --data "$NNC_DIGITS" --epochs 12 --ckpt "$tmp/digits.ckpt"
    [ "$rc" -eq 0 ] || fail "status $rc"
    local acc
    acc=$(grep '^epoch 12:' "$tmp/out" | sed 's/.*test accuracy \([0-9.]*\)%.*/\1/')
    [ -n "$acc" ] || fail "no epoch 12"
    below "$acc" 85 && fail "test accuracy $acc% < 85%"
    # two more epochs from the checkpoint
    mpi 2 "$TRAIN_DIGITS" --data "$NNC_DIGITS" --epochs 14 --resume "$tmp/digits.ckpt"
    [ "$rc" -eq 0 ] || fail "status $rc after --resume"
    grep -q "starting at epoch 13" "$tmp/out" || fail "did not resume at epoch 13"
    grep -q "^epoch 14:" "$tmp/out" || fail "no epoch 14"
}

# libnncrt_mpi exports exactly the nnc_mpi_* API (internal symbols are
# nncmpi_*, hidden), and nnc_mpi.h with a generated header is C99 that
# compiles with -pedantic-errors; NNC_MPI_DEFINE_MODEL fills every entry.
case_api() {
    local bad
    bad=$(nm -D --defined-only "$NNC_MPI_SO" | awk '$2 ~ /[TDBRVW]/ {print $3}' | grep -v '^nnc_mpi_')
    [ -z "$bad" ] || fail "libnncrt_mpi.so exports more than nnc_mpi_*: $bad"
    for sym in new free rank size timeout bucket_bytes grad_buckets steps_done broadcast \
        allreduce_grads step save_checkpoint load_checkpoint check_replicas abort; do
        nm -D --defined-only "$NNC_MPI_SO" | awk '{print $3}' | grep -qx "nnc_mpi_$sym" ||
            fail "libnncrt_mpi.so does not export nnc_mpi_$sym"
    done
    bad=$(nm -g --defined-only "$NNC_MPI_A" | awk 'NF == 3 {print $3}' | grep -v -e '^nnc_mpi_' -e '^nncmpi_')
    [ -z "$bad" ] || fail "libnncrt_mpi.a defines globals outside nnc_mpi_/nncmpi_: $bad"
    cat >"$tmp/api.c" <<'C'
#include <stdio.h>
#include "digits.h"
#include "nnc_mpi.h"
NNC_MPI_DEFINE_MODEL(digits)
int main(void)
{
    digits *m = digits_new();
    nnc_mpi_model mm = digits_mpi_model(m);
    int ok = mm.instance == (void *)m && mm.info == digits_info() && mm.param &&
             mm.grad && mm.update && mm.save_checkpoint && mm.load_checkpoint &&
             mm.param(m, "W1") == digits_param(m, "W1") &&
             mm.grad(m, "b2") == digits_grad(m, "b2");
    digits_free(m);
    puts(ok ? "api ok" : "api wrong");
    return !ok;
}
C
    # shellcheck disable=SC2086  # sanitizer flags when libnncrt has them
    say "$MPICC" -std=c99 -Wall -Wextra -pedantic-errors -Werror $NNC_TEST_CC_FLAGS -I"$NNC_MPI_TEST_BIN" \
        -I"$NNC_SOURCE_DIR/runtime" -I"$NNC_SOURCE_DIR/runtime/mpi" "$tmp/api.c" \
        "$NNC_MPI_TEST_BIN/digits.o" "$NNC_MPI_SO" -Wl,-rpath,"$(dirname "$NNC_MPI_SO")" \
        "$NNCRT_SO" -Wl,-rpath,"$(dirname "$NNCRT_SO")" -lm -o "$tmp/api" ||
        fail "nnc_mpi.h is not pedantic C99"
    say "$tmp/api" | grep -qx "api ok" || fail "NNC_MPI_DEFINE_MODEL"
}

# Installed like a user would: the prefix holds the library, header,
# nncrt_mpi.pc and the CMake package; examples/mpi builds against it
# with find_package(nncrt_mpi), and by hand with pkg-config, and runs.
case_install() {
    local prefix=$tmp/prefix
    say "$CMAKE_COMMAND" --install "$NNC_BUILD_DIR" --prefix "$prefix" >"$tmp/install.log" ||
        fail "cmake --install failed: $(cat "$tmp/install.log")"
    for f in lib/libnncrt_mpi.a lib/libnncrt_mpi.so include/nnc_mpi.h \
        lib/pkgconfig/nncrt_mpi.pc lib/cmake/nncrt_mpi/nncrt_mpiConfig.cmake; do
        [ -e "$prefix/$f" ] || fail "not installed: $f"
    done
    cp -r "$NNC_SOURCE_DIR/examples/mpi" "$tmp/example"
    say "$CMAKE_COMMAND" -S "$tmp/example" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_FLAGS="$NNC_TEST_CC_FLAGS" \
        >"$tmp/configure.log" 2>&1 || fail "configure failed: $(cat "$tmp/configure.log")"
    say "$CMAKE_COMMAND" --build "$tmp/build" >"$tmp/build.log" 2>&1 ||
        fail "build failed: $(cat "$tmp/build.log")"
    readelf -d "$tmp/build/train_digits" | grep -q 'NEEDED.*libnncrt_mpi\.so' ||
        fail "train_digits does not link libnncrt_mpi.so"
    export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
    local cflags libs
    cflags=$(pkg-config --cflags nncrt_mpi) || fail "pkg-config --cflags nncrt_mpi failed"
    libs=$(pkg-config --libs nncrt_mpi) || fail "pkg-config --libs nncrt_mpi failed"
    say "$prefix/bin/nnc" "$tmp/example/digits.nn" -o "$tmp/digits.o" || fail "nnc failed"
    # shellcheck disable=SC2086  # word lists from pkg-config
    say cc -std=c99 -Wall -Werror $NNC_TEST_CC_FLAGS $cflags -I"$tmp" "$tmp/example/train_digits.c" "$tmp/digits.o" \
        $libs -lm -Wl,-rpath,"$prefix/lib" -o "$tmp/train_pc" || fail "cc with pkg-config failed"
    [ -f "$NNC_DIGITS" ] || return 0
    for exe in "$tmp/build/train_digits" "$tmp/train_pc"; do
        mpi 2 "$exe" --data "$NNC_DIGITS" --epochs 1
        [ "$rc" -eq 0 ] && grep -q "^epoch  1:" "$tmp/out" || fail "$exe did not train"
    done
}

"case_$case"
echo "ok: mpi/$case"
