// Package bpflsm is drmfilter's BPF-LSM backend: programs attached to the
// kernel's LSM hooks decide opens, execs, reads and the operations that
// destroy or replace a file (unlink, rename, link, truncate, attribute
// changes) in the kernel, from maps that user space fills from the
// policies (Build, Load, Replace). Probe says whether this kernel runs
// such programs.
package bpflsm
