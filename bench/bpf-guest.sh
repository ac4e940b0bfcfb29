#!/usr/bin/env bash
# What the BPF-LSM programs cost, measured in the qemu guest (the host
# kernel refuses BPF LSM programs): internal/bpflsm's TestKernelBenchmarks,
# in one boot, interleaved in rounds that alternate which phase goes first.
#   open+close (openat of one name in its directory) of files with no
#     programs attached (native), of uncovered files (on a filesystem with
#     no covered file, and four directories deep on one with covered
#     files), of covered files allowed (through their tree, and through an
#     entry of their own) and denied (EPERM, an event in the ring buffer,
#     read meanwhile as the agent does);
#   an exec of a static busybox (`true`), natively, uncovered and covered;
#   the memory of the kernel's maps (memlock, /proc/self/fdinfo) and the
#     Plan's Go heap for FILES files with entries of their own and RULES
#     rules.
# Each ratio is ops/s over the native ops/s of the same round; the table
# gives the median over the rounds. Under qemu's TCG (emulation, which
# these machines fall back to) the ratios overstate the programs' cost.
#
#   sudo bench/bpf-guest.sh [--rounds N] [--benchtime D] [--files N] [--rules N]
#        [--set-files N] [--log FILE]
#
# Defaults: 5 rounds of 1s per case, 1,000,000 files and 10,000 rules for
# the memory, 1,000 files per open case. Needs root, qemu-system-x86, cpio
# and busybox-static (scripts/test.sh installs them); fetches the guest
# kernel with .ci/guest-kernel.sh when DRMFILTER_GUEST_KERNEL is unset.
# The whole test log is kept in --log (default: a temp file).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
log=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) export DRMFILTER_BPF_BENCH_ROUNDS=$2; shift 2 ;;
	--benchtime) export DRMFILTER_BPF_BENCH_BENCHTIME=$2; shift 2 ;;
	--files) export DRMFILTER_BPF_BENCH_FILES=$2; shift 2 ;;
	--rules) export DRMFILTER_BPF_BENCH_RULES=$2; shift 2 ;;
	--set-files) export DRMFILTER_BPF_BENCH_SETFILES=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*)
		echo "unknown argument: $1" >&2
		usage
		;;
	esac
done
if [ "$(id -u)" != 0 ]; then
	echo "run as root: the guest boot needs it (sudo $0)" >&2
	exit 1
fi
for tool in qemu-system-x86_64 cpio busybox; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "missing $tool (scripts/test.sh installs qemu-system-x86, cpio and busybox-static)" >&2
		exit 1
	fi
done
if [ -z "${DRMFILTER_GUEST_KERNEL:-}" ]; then
	DRMFILTER_GUEST_KERNEL=$(.ci/guest-kernel.sh | tail -n1)
	export DRMFILTER_GUEST_KERNEL
fi
if [ -z "$log" ]; then
	log=$(mktemp "${TMPDIR:-/tmp}/drmfilter-bpf-bench.XXXXXX")
fi

echo "== booting the guest (internal/bpflsm TestInGuestBenchmarks); log: $log"
start=$(date +%s)
status=0
DRMFILTER_BPF_BENCH=1 go test ./internal/bpflsm -run '^TestInGuestBenchmarks$' -v -count=1 -timeout 45m >"$log" 2>&1 || status=$?
elapsed=$(($(date +%s) - start))
if [ "$status" != 0 ] || ! grep -q -- '--- PASS: TestInGuestBenchmarks' "$log"; then
	tail -n 60 "$log" >&2
	echo "the benchmark run failed or was skipped (exit $status) after ${elapsed}s; the whole log: $log" >&2
	exit 1
fi

echo
sed -n 's/.*; booting \(.*\), timeout.*/guest: booted \1/p' "$log"
sed -n 's/.*guest: BENCH \{0,1\}//p' "$log"
echo
echo "Emulation (qemu TCG) overstates what BPF programs cost next to the kernel's own code:"
echo "read these ratios as upper bounds, not as what a machine running the agent would see."
echo "The whole run took ${elapsed}s (build, boot, measurements); the log: $log"
