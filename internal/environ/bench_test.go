package environ

import (
	"path/filepath"
	"testing"
)

func BenchmarkDetectFixture(b *testing.B) {
	dir, _ := filepath.Abs("testdata/fixtures/eks-pod-cgroupfs")
	b.ReportAllocs()
	for b.Loop() {
		detectFixture(b, dir)
	}
}

func BenchmarkParseCgroupPath(b *testing.B) {
	p := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2f1a6c0e_5b8d_4e3f_9a7c_1d2e3f4a5b6c.slice/cri-containerd-3f4d8c2b9a1e7f6d5c4b3a29180f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d.scope"
	b.ReportAllocs()
	for b.Loop() {
		ContainerFromCgroupPath(p)
	}
}
