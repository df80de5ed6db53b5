#!/usr/bin/env bash
# e2e_test.sh CASE — one end-to-end test: compile, run, compare with PyTorch.
#
# Each case_NAME function below is a ctest (e2e/NAME, registered by
# CMakeLists.txt from this file).  The environment gives the pieces:
#   NNC                  the nnc executable
#   NNC_PYTHON           a python3 with torch and numpy
#   NNC_CONFORMANCE_DIR  mlp.nn, rnn.nn, lstm.nn, gpt.nn
#   NNC_RUNTIME_DIR      the directory of nnc.h
#   NNCRT_LIB            libnncrt.a
#   NNC_OPENBLAS_LIB     the OpenBLAS library libnncrt needs
#   NNC_TEST_CC_FLAGS    extra flags for cc (sanitizers of the build)
# The models run at small sizes, on random inputs (e2e.py) and parameters
# initialised by nnc from a seed; torch_models.py (tests/codegen) computes
# the float64 reference from the same safetensors files, and every output
# must agree to a relative L2 error of 1e-4.
set -uo pipefail

if [ $# -ne 1 ]; then
    echo "usage: e2e_test.sh CASE" >&2
    exit 2
fi
case=$1
here=$(cd "$(dirname "$0")" && pwd)
torch_models=$here/../codegen/torch_models.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

fail() {
    echo "FAIL: e2e/$case: $*" >&2
    exit 1
}

# say CMD...: print the command, then run it.
say() {
    echo "+ $*" >&2
    "$@"
}

# The test sizes of each model, and forward's arguments after the instance.
defines() {
    case $1 in
    mlp) echo "-D B=4 -D IN=16 -D H=8" ;;
    rnn) echo "-D B=2 -D T=3 -D V=11 -D E=5 -D H=7" ;;
    lstm) echo "-D B=2 -D T=3 -D V=11 -D E=5 -D H=7" ;;
    gpt) echo "-D B=2 -D T=5 -D V=17 -D C=8 -D L=2 -D NH=2" ;;
    esac
}
forward_args() {
    case $1 in
    mlp) echo "ARG(x), ARG(logits)" ;;
    rnn) echo "ARG(tokens), ARG(h0), ARG(logits), ARG(h_last)" ;;
    lstm) echo "ARG(tokens), ARG(h0), ARG(c0), ARG(logits), ARG(h_last), ARG(c_last)" ;;
    gpt) echo "ARG(tokens), ARG(logits)" ;;
    esac
}
train_args() {
    case $1 in
    mlp) echo "ARG(x), ARG(y)" ;;
    rnn) echo "ARG(tokens), ARG(targets), ARG(h0)" ;;
    lstm) echo "ARG(tokens), ARG(targets), ARG(h0), ARG(c0)" ;;
    gpt) echo "ARG(tokens), ARG(targets)" ;;
    esac
}

# prepare MODEL [e2e.py inputs options]: $model_nn, $dflags, random
# inputs in in.safetensors and parameters from seed 7 in params.safetensors.
prepare() {
    model=$1
    shift
    model_nn=$NNC_CONFORMANCE_DIR/$model.nn
    read -ra dflags <<<"$(defines "$model")"
    say "$NNC_PYTHON" "$here/e2e.py" inputs "$model_nn" in.safetensors "${dflags[@]}" "$@" ||
        fail "cannot make inputs"
    say "$NNC" run "$model_nn" "${dflags[@]}" --seed 7 --save params.safetensors ||
        fail "nnc run --save failed"
}

# against_torch GOT: the PyTorch reference of params + inputs vs GOT.
against_torch() {
    say "$NNC_PYTHON" "$torch_models" "$model_nn" params.safetensors in.safetensors \
        ref.safetensors "${dflags[@]}" || fail "torch_models.py failed"
    say "$NNC_PYTHON" "$here/e2e.py" compare "$1" ref.safetensors --tol 1e-4 ||
        fail "$1 differs from PyTorch"
}

# build_program MODEL [SOURCES...]: nnc -o MODEL.o, then e2e_main.c (and
# SOURCES) linked against it.
build_program() {
    local model=$1
    shift
    say "$NNC" "$model_nn" "${dflags[@]}" -o "$model.o" || fail "nnc -o $model.o failed"
    [ -f "$model.h" ] || fail "no $model.h beside $model.o"
    # shellcheck disable=SC2086  # NNC_TEST_CC_FLAGS is a list of flags
    say cc -std=c11 -Wall -Wextra -Werror $NNC_TEST_CC_FLAGS -I. -I"$NNC_RUNTIME_DIR" \
        -DNNC_MODEL="$model" -DNNC_HEADER="\"$model.h\"" \
        "-DNNC_FORWARD_ARGS=$(forward_args "$model")" \
        "-DNNC_TRAIN_ARGS=$(train_args "$model")" "$here/e2e_main.c" "$@" "$model.o" \
        "$NNCRT_LIB" "$NNC_OPENBLAS_LIB" -lpthread -lm -o prog || fail "cannot build the program"
}

# The allocation counter replaces malloc, as AddressSanitizer does: the
# no-allocation cases are skipped (status 77) in a sanitized build.
skip_if_sanitized() {
    if [ -n "$NNC_TEST_CC_FLAGS" ]; then
        echo "skipped: the allocation counter cannot run beside $NNC_TEST_CC_FLAGS"
        exit 77
    fi
}

build_counting_program() {
    skip_if_sanitized
    build_program "$1" -DNNC_COUNT_ALLOCS "$here/alloc_count.c"
}

# forward through `nnc run`, compared with PyTorch.
run_case() {
    prepare "$1"
    say "$NNC" run "$model_nn" "${dflags[@]}" --params params.safetensors \
        --inputs in.safetensors --outputs out.safetensors || fail "nnc run failed"
    against_torch out.safetensors
}

# forward through a C program linked with the object, compared with PyTorch.
link_case() {
    prepare "$1"
    build_program "$1"
    say ./prog forward params.safetensors in.safetensors out.safetensors ||
        fail "the program failed"
    against_torch out.safetensors
}

# --grads through `nnc run`, compared with PyTorch's autograd (1e-3, the
# training issue's tolerance for gradients).
grads_case() {
    prepare "$1"
    say "$NNC" run "$model_nn" "${dflags[@]}" --params params.safetensors \
        --inputs in.safetensors --grads grads.safetensors || fail "nnc run --grads failed"
    say "$NNC_PYTHON" "$here/e2e.py" grads "$model_nn" params.safetensors in.safetensors \
        ref.safetensors "${dflags[@]}" || fail "e2e.py grads failed"
    say "$NNC_PYTHON" "$here/e2e.py" compare grads.safetensors ref.safetensors --tol 1e-3 ||
        fail "the gradients differ from PyTorch's"
}

case_run_mlp() { run_case mlp; }
case_run_rnn() { run_case rnn; }
case_run_lstm() { run_case lstm; }
case_run_gpt() { run_case gpt; }
case_link_mlp() { link_case mlp; }
case_link_rnn() { link_case rnn; }
case_link_lstm() { link_case lstm; }
case_link_gpt() { link_case gpt; }
case_grads_mlp() { grads_case mlp; }
case_grads_rnn() { grads_case rnn; }
case_grads_lstm() { grads_case lstm; }
case_grads_gpt() { grads_case gpt; }

# No heap call after NAME_new in init, forward, backward and train_step,
# at the test sizes, on one thread.
no_alloc_case() {
    skip_if_sanitized
    prepare "$1"
    build_counting_program "$1"
    say ./prog allocs in.safetensors scratch.safetensors >allocs.txt
    local rc=$?
    cat allocs.txt
    [ $rc -eq 0 ] || fail "heap calls after ${1}_new"
    grep -qx "init, forward x2, backward, train_step x2 after NAME_new: 0 heap calls" \
        allocs.txt || fail "no count printed"
}

case_no_alloc_mlp() { NNC_NUM_THREADS=1 no_alloc_case mlp; }
case_no_alloc_rnn() { NNC_NUM_THREADS=1 no_alloc_case rnn; }
case_no_alloc_lstm() { NNC_NUM_THREADS=1 no_alloc_case lstm; }
case_no_alloc_gpt() { NNC_NUM_THREADS=1 no_alloc_case gpt; }

# The same with sizes and a thread count that use the runtime's thread
# pool (initialisers above 16384 values and GEMMs above 64^3 are split).
case_no_alloc_threads() {
    skip_if_sanitized
    model_nn=$NNC_CONFORMANCE_DIR/mlp.nn
    dflags=(-D B=64 -D IN=256 -D H=256)
    say "$NNC_PYTHON" "$here/e2e.py" inputs "$model_nn" in.safetensors "${dflags[@]}" ||
        fail "cannot make inputs"
    build_counting_program mlp
    NNC_NUM_THREADS=4 say ./prog allocs in.safetensors scratch.safetensors >allocs.txt
    local rc=$?
    cat allocs.txt
    [ $rc -eq 0 ] || fail "heap calls after mlp_new with 4 threads"
}

# An embedding id out of range: forward returns NNC_ERR_RANGE with a
# message; nnc run exits 1 with it and writes no outputs.
case_bad_id() {
    prepare gpt --bad-id 17
    build_program gpt
    say ./prog bad-id in.safetensors >bad.txt || fail "forward did not return NNC_ERR_RANGE"
    cat bad.txt
    grep -qF "forward: -4 (NNC_ERR_RANGE): embedding: id 17 at position [1, 4] is outside 0..16" \
        bad.txt || fail "unexpected message"
    say "$NNC" run "$model_nn" "${dflags[@]}" --inputs in.safetensors --outputs out.safetensors \
        2>err.txt
    local rc=$?
    cat err.txt
    [ $rc -eq 1 ] || fail "nnc run exited $rc, expected 1"
    grep -qxF "nnc: error: embedding: id 17 at position [1, 4] is outside 0..16" err.txt ||
        fail "nnc run did not print the message"
    [ ! -e out.safetensors ] || fail "nnc run wrote outputs"
}

# --grads and --train-steps on lin_grads.ir, whose gradient is written by
# hand (no autodiff pass needed): the gradient file, the printed losses and
# the saved parameters against PyTorch.  In one run the steps go in
# interface.md's order: parameters, --grads (before any step), the
# training steps, --save (after them).
case_run_grads_train() {
    local ir=$here/lin_grads.ir
    say "$NNC_PYTHON" "$here/e2e.py" inputs "$ir" in.safetensors || fail "cannot make inputs"
    say "$NNC" run --ir-in "$ir" --seed 4 --save params.safetensors || fail "--save failed"
    say "$NNC" run --ir-in "$ir" --params params.safetensors --inputs in.safetensors \
        --train-steps 3 --save after.safetensors --grads grads.safetensors >log.txt ||
        fail "nnc run --grads --train-steps failed"
    cat log.txt
    say "$NNC_PYTHON" "$here/e2e.py" linear params.safetensors in.safetensors \
        grads.safetensors log.txt after.safetensors || fail "differs from PyTorch"
}

# A target out of range in backward: --grads and --train-steps exit 1 with
# the message, and nothing after the failed step happens (no --save).
case_run_bad_target() {
    local ir=$here/bad_target.ir
    say "$NNC_PYTHON" "$here/e2e.py" inputs "$ir" in.safetensors --ids 2 --bad-id 5 ||
        fail "cannot make inputs"
    local opt
    for opt in --grads --train-steps; do
        local arg=g.safetensors
        [ "$opt" = --train-steps ] && arg=2
        say "$NNC" run --ir-in "$ir" --inputs in.safetensors "$opt" "$arg" \
            --save p.safetensors >out.txt 2>err.txt
        local rc=$?
        cat err.txt
        [ $rc -eq 1 ] || fail "$opt: exit status $rc, expected 1"
        grep -qxF "nnc: error: cross_entropy: target 5 at position [1] is outside 0..1" err.txt ||
            fail "$opt: no message"
        [ ! -s out.txt ] || fail "$opt: printed a step"
        if [ -e g.safetensors ] || [ -e p.safetensors ]; then fail "$opt: wrote a file"; fi
    done
}

# An AArch64 object and its header from an x86-64 host.
case_cross_aarch64() {
    say "$NNC" "$NNC_CONFORMANCE_DIR/gpt.nn" --target aarch64-linux-gnu -o x.o ||
        fail "nnc --target aarch64-linux-gnu failed"
    readelf -h x.o >elf.txt || fail "readelf failed"
    cat elf.txt
    grep -qE '^ +Machine: +AArch64$' elf.txt || fail "not an AArch64 object"
    grep -qE '^ +Type: +REL ' elf.txt || fail "not a relocatable object"
    grep -qF "int gpt_forward(gpt *m, const int32_t *tokens, float *logits);" x.h ||
        fail "x.h does not declare gpt_forward"
}

if ! declare -F "case_$case" >/dev/null; then
    echo "e2e_test.sh: no case '$case'" >&2
    exit 2
fi
"case_$case"
echo "ok: e2e/$case"
