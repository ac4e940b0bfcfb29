package bpflsm

// The programs are compiled by bpf2go (cilium/ebpf's generator) with
// Debian's clang; the object and its Go bindings are committed, so that
// building drmfilter needs no clang. .ci/run regenerates them and fails if
// the result differs (scripts/bpf-generate.sh --check).
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -fdebug-prefix-map=${PWD}=." -target bpfel -type event -type exe_event -type cls -type rule -type rkey -type fkey -type fval -type nkey -type pkey -type exe_rules -type config -type guard_state -type tamper_event -go-package bpflsm lsm bpf/drmfilter.bpf.c
