#!/bin/sh
# Builds tests/fuzz/format_fuzz_driver.cpp with the format reader under AddressSanitizer and
# UndefinedBehaviorSanitizer (outside the package build), then:
#   python tests/fuzz/fuzz_format.py --iterations 20000 --driver <output>
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
output=${1:-/tmp/format_fuzz_asan}
g++ -std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
    -fno-sanitize-recover=all -Wall -Wextra \
    -I"$root/csrc" -I"$root/csrc/include" \
    "$root"/csrc/format/*.cpp "$root/tests/fuzz/format_fuzz_driver.cpp" -o "$output"
echo "$output"
