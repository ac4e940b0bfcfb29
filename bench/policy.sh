#!/usr/bin/env bash
# Decision-engine benchmarks: decision time and allocations with 10, 1,000
# and 10,000 rules over a corpus of 100,000 generated paths, the compiled
# size, and the median/p99 latency of single decisions.
#
#   bench/policy.sh            # 5 runs each, summarised by benchstat if installed
#   COUNT=1 bench/policy.sh    # one quick run
set -euo pipefail
cd "$(dirname "$0")/.."
count="${COUNT:-5}"
out="$(mktemp)"
go test -run '^$' -bench 'BenchmarkDecide|BenchmarkCompile' -benchmem -count "$count" ./internal/policy/ | tee "$out"
if command -v benchstat >/dev/null 2>&1; then
	benchstat "$out"
else
	echo "(go install golang.org/x/perf/cmd/benchstat@latest for a summary with confidence intervals)"
fi
