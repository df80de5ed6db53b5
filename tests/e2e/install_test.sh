#!/usr/bin/env bash
# install_test.sh — `cmake --install` into a temporary prefix, then use it
# from outside like a user would (ctest e2e/install_hello):
#
#   1. the prefix holds bin/nnc, lib/libnncrt.{a,so}, include/nnc.h, the
#      CMake package and nncrt.pc, and the installed nnc runs;
#   2. examples/hello, copied out of the tree, configures against the
#      prefix with find_package(nnc), builds (nnc_add_model compiles
#      hello.nn during the build) and runs; touching hello.nn rebuilds it;
#   3. the same program builds by hand with the installed nnc and
#      `pkg-config nncrt`, statically and dynamically.
# Environment: CMAKE_COMMAND, NNC_BUILD_DIR, NNC_SOURCE_DIR, and
# NNC_TEST_CC_FLAGS (the sanitizer flags a sanitized libnncrt needs in the
# programs that use it).
set -uo pipefail

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() {
    echo "FAIL: e2e/install_hello: $*" >&2
    exit 1
}

say() {
    echo "+ $*" >&2
    "$@"
}

say "$CMAKE_COMMAND" --install "$NNC_BUILD_DIR" --prefix "$prefix" >"$tmp/install.log" ||
    fail "cmake --install failed: $(cat "$tmp/install.log")"
for f in bin/nnc lib/libnncrt.a lib/libnncrt.so include/nnc.h lib/cmake/nnc/nncConfig.cmake \
    lib/cmake/nnc/nncConfigVersion.cmake lib/cmake/nnc/nncAddModel.cmake \
    lib/pkgconfig/nncrt.pc; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
done
say "$prefix/bin/nnc" --version | grep -qE '^nnc [0-9]+\.[0-9]+\.[0-9]+$' ||
    fail "the installed nnc does not run"

# 2. the example as an outside project
cp -r "$NNC_SOURCE_DIR/examples/hello" "$tmp/hello"
cc_flags=${NNC_TEST_CC_FLAGS:-}
say "$CMAKE_COMMAND" -S "$tmp/hello" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="$cc_flags" -DCMAKE_EXE_LINKER_FLAGS="$cc_flags" \
    >"$tmp/configure.log" 2>&1 || fail "configure failed: $(cat "$tmp/configure.log")"
say "$CMAKE_COMMAND" --build "$tmp/build" >"$tmp/build.log" 2>&1 ||
    fail "build failed: $(cat "$tmp/build.log")"
grep -qF "nnc: compiling hello.nn into hello.o and hello.h" "$tmp/build.log" ||
    fail "nnc_add_model's command did not run"
say "$tmp/build/hello" >"$tmp/run.log" || fail "hello failed: $(cat "$tmp/run.log")"
cat "$tmp/run.log"
grep -qx "hello: ok" "$tmp/run.log" || fail "hello did not print 'hello: ok'"
readelf -d "$tmp/build/hello" | grep -q 'NEEDED.*libnncrt\.so' ||
    fail "hello does not link libnncrt.so (nnc::nncrt)"
touch "$tmp/hello/hello.nn"
say "$CMAKE_COMMAND" --build "$tmp/build" >"$tmp/rebuild.log" 2>&1 || fail "rebuild failed"
grep -qF "nnc: compiling hello.nn" "$tmp/rebuild.log" || fail "a changed hello.nn was not recompiled"

# 3. pkg-config
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
say "$prefix/bin/nnc" "$tmp/hello/hello.nn" -o "$tmp/hello.o" || fail "nnc -o failed"
read -ra cflags <<<"$(pkg-config --cflags nncrt)" || fail "pkg-config --cflags failed"
read -ra libs <<<"$(pkg-config --libs nncrt)" || fail "pkg-config --libs failed"
read -ra static_libs <<<"$(pkg-config --static --libs nncrt)" || fail "pkg-config --static failed"
# shellcheck disable=SC2086  # cc_flags is a list of flags
say cc -std=c99 -Wall -Werror $cc_flags "${cflags[@]}" -I"$tmp" "$tmp/hello/main.c" "$tmp/hello.o" \
    "${libs[@]}" -lm -Wl,-rpath,"$prefix/lib" -o "$tmp/hello_pc" || fail "cc with pkg-config failed"
say "$tmp/hello_pc" | grep -qx "hello: ok" || fail "the pkg-config build did not run"
# shellcheck disable=SC2086  # cc_flags is a list of flags
say cc -std=c99 -Wall -Werror $cc_flags "${cflags[@]}" -I"$tmp" "$tmp/hello/main.c" "$tmp/hello.o" \
    -Wl,-Bstatic "${static_libs[@]:0:2}" -Wl,-Bdynamic "${static_libs[@]:2}" -lm \
    -o "$tmp/hello_static" || fail "static cc with pkg-config failed"
readelf -d "$tmp/hello_static" | grep -q 'NEEDED.*libnncrt' && fail "hello_static needs libnncrt.so"
say "$tmp/hello_static" | grep -qx "hello: ok" || fail "the static build did not run"
echo "ok: e2e/install_hello"
