package kubeapi

import "syscall"

// sysProcAttr makes the kernel kill etcd and kube-apiserver when the test
// binary dies without stopping them (a panic, a timeout, a missing
// Shared.Run), so no server outlives its tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
