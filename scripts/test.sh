#!/usr/bin/env bash
# The full test suite, as CI runs it (.ci/run calls this script):
#   1. install missing Debian and npm packages;
#   2. configure with -DGW_WERROR=ON, build, run every test (unit + e2e) with CTest;
#   3. build again with -DGW_SANITIZE=address;undefined and run every test again;
#   4. check clang-format on every .c/.h and the include rules of DESIGN.md.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

scripts/deps.sh

echo "== format and include rules"
scripts/check-format.sh
scripts/check-includes.sh

echo "== build (-Werror) and test"
cmake -S . -B build -DGW_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== build with ASan+UBSan and test"
cmake -S . -B build-asan -DGW_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
    -DGW_SANITIZE="address;undefined" >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs")

echo "== all tests passed"
