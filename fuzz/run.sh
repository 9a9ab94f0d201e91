#!/usr/bin/env bash
# Coverage-guided fuzzing of one bank statement parser with libFuzzer + AddressSanitizer.
#   fuzz/run.sh camt|bai2|mt940 SECONDS
# Builds BankFormats + ARDomain Money/Currency + fuzz/PARSER.swift with swiftc outside SwiftPM into
# .build-fuzz/ (git-ignored), seeds the corpus from the test fixtures, runs for SECONDS, and copies any
# crashing input into Tests/BankFormatsTests/Fixtures/regressions/ (where a test replays them all).
set -euo pipefail
parser=${1:?usage: fuzz/run.sh camt|bai2|mt940 SECONDS}
seconds=${2:?usage: fuzz/run.sh camt|bai2|mt940 SECONDS}
case "$parser" in camt|bai2|mt940) ;; *) echo "unknown parser $parser" >&2; exit 2;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/.build-fuzz"
mkdir -p "$build/ardomain" "$build/corpus/$parser" "$build/artifacts/$parser"
swiftc=${SWIFTC:-swiftc}
flags=(-parse-as-library -sanitize=fuzzer,address -O -g -swift-version 6
       -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility)

"$swiftc" "${flags[@]}" -module-name ARDomain -wmo -emit-module -emit-module-path "$build/ardomain/ARDomain.swiftmodule" \
    -c "$root/Sources/ARDomain/Money.swift" "$root/Sources/ARDomain/Currency.swift" "$root/Sources/ARDomain/SHA256.swift" -o "$build/ardomain/ARDomain.o"
"$swiftc" "${flags[@]}" -module-name BankFormats -I "$build/ardomain" -I "$root/Sources/CLibXML2" \
    -Xcc -I/usr/include/libxml2 "$root"/Sources/BankFormats/*.swift "$root/fuzz/entry.swift" -D "FUZZ_$(echo "$parser" | tr a-z A-Z)" \
    "$build/ardomain/ARDomain.o" -lxml2 -o "$build/fuzz-$parser"

fixtures="$root/Tests/BankFormatsTests/Fixtures"
case "$parser" in
  camt) cp "$fixtures"/*.xml "$build/corpus/$parser/" ;;
  bai2) cp "$fixtures"/*.bai2 "$build/corpus/$parser/" ;;
  mt940) cp "$fixtures"/*.sta "$build/corpus/$parser/" ;;
esac
dictionary=()
[ -f "$root/fuzz/$parser.dict" ] && dictionary=(-dict="$root/fuzz/$parser.dict")

rm -f "$build/artifacts/$parser"/*  # only this run's findings are reported and kept
status=0
"$build/fuzz-$parser" "$build/corpus/$parser" "${dictionary[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/artifacts/$parser/" || status=$?
for artifact in "$build/artifacts/$parser"/*; do
    [ -e "$artifact" ] || continue
    cp "$artifact" "$fixtures/regressions/$parser-$(basename "$artifact")"
    echo "kept reproducer: $fixtures/regressions/$parser-$(basename "$artifact")"
done
exit $status
