#!/usr/bin/env bash
# Installs a prunekv build into a temporary prefix, then configures, builds and runs the tiny
# consumer project (tests/install/consumer) against it with find_package(prunekv).
# usage: run_consumer_test.sh BUILD_DIR SOURCE_DIR [BUILD_TYPE] [GENERATOR]
set -euo pipefail
build_dir=$1
source_dir=$2
build_type=${3:-Release}
generator=${4:-Ninja}

work=$(mktemp -d "${TMPDIR:-/tmp}/prunekv-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$source_dir/tests/install/consumer" -B "$work/build" -G "$generator" -DCMAKE_BUILD_TYPE="$build_type" \
  -DCMAKE_PREFIX_PATH="$work/prefix" "${launcher[@]}" >/dev/null
cmake --build "$work/build" >/dev/null
# The installed CLI runs too.
"$work/prefix/bin/prunekv" --version
"$work/build/consumer"
