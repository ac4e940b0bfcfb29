package nspath

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// IDs used in testdata/*/*.mountinfo.
const (
	dockerID     = "6b50ac965e07090a2a852c78b0075392b940d91a403ec4af66295c888da634e5"
	overlayID    = "c41b2f0a9d8e7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"
	podUID       = "7d2c1a8e-5f3b-4c1d-9e6a-2b8f0c4d1e73"
	otherPodUID  = "0e4f6a1b-2c3d-4e5f-8a9b-c0d1e2f3a4b5"
	containerID  = "b2cacf061f6fa2a75b2660ad9e3014612c70d938553503ffa934988b81daffcd"
	sandboxID    = "7403983f95ee0806bf31ec463130d9b82044d2346d9c27efeae3c1f92c21ab0c"
	dockerMerged = "/var/lib/docker/overlay2/" + overlayID + "/merged"
	podDir       = "/var/lib/kubelet/pods/" + podUID
	podRootfs    = "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + containerID + "/rootfs"
	cmVersion    = "..2026_11_26_21_04_33.1823456789"
)

// loadFixture parses testdata/<name>/<file>.mountinfo.
func loadFixture(t testing.TB, name, file string) []mountinfo.Mount {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name, file+".mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := mountinfo.Parse(f)
	if err != nil {
		t.Fatalf("%s/%s: %v", name, file, err)
	}
	return ms
}

type translateCase struct {
	name         string
	path         string
	major, minor uint32
	want         string // "" means not visible
}

func runTranslate(t *testing.T, fixture string, reverse bool, cases []translateCase) {
	t.Helper()
	host, proc := loadFixture(t, fixture, "host"), loadFixture(t, fixture, "proc")
	if reverse {
		host, proc = proc, host
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Translate(host, proc, tc.path, tc.major, tc.minor)
			if tc.want == "" {
				if ok {
					t.Fatalf("Translate(%q, %d:%d) = %q, want not visible", tc.path, tc.major, tc.minor, got)
				}
				return
			}
			if !ok || got != tc.want {
				t.Fatalf("Translate(%q, %d:%d) = %q, %v; want %q", tc.path, tc.major, tc.minor, got, ok, tc.want)
			}
		})
	}
}

func TestTranslateDocker(t *testing.T) {
	runTranslate(t, "docker", false, []translateCase{
		{"overlay root through merged", dockerMerged + "/etc/passwd", 0, 115, "/etc/passwd"},
		{"overlay root itself", dockerMerged, 0, 115, "/"},
		{"overlay file with a layer's device (no xino)", dockerMerged + "/usr/bin/python3", 259, 2, "/usr/bin/python3"},
		{"hosts file bind", "/var/lib/docker/containers/" + dockerID + "/hosts", 259, 2, "/etc/hosts"},
		{"resolv.conf file bind", "/var/lib/docker/containers/" + dockerID + "/resolv.conf", 259, 2, "/etc/resolv.conf"},
		{"unclean path", "/var/lib/docker//containers/" + dockerID + "/./hosts", 259, 2, "/etc/hosts"},
		{"unknown device takes the mount's", "/var/lib/docker/containers/" + dockerID + "/hostname", 0, 0, "/etc/hostname"},
		{"volume file", "/var/lib/docker/volumes/pgdata/_data/base/1/pg_filenode.map", 259, 2, "/data/base/1/pg_filenode.map"},
		{"volume directory", "/var/lib/docker/volumes/pgdata/_data", 259, 2, "/data"},
		{"host directory bind", "/home/dev/project/go.mod", 259, 2, "/work/go.mod"},
		{"sibling of a file bind", "/var/lib/docker/containers/" + dockerID + "/hosts.bak", 259, 2, ""},
		{"container's own json", "/var/lib/docker/containers/" + dockerID + "/config.v2.json", 259, 2, ""},
		{"volume name prefix is not a segment", "/var/lib/docker/volumes/pgdata2/_data/x", 259, 2, ""},
		{"host file", "/etc/shadow", 259, 2, ""},
		{"wrong device", "/var/lib/docker/volumes/pgdata/_data/x", 8, 1, ""},
		{"other filesystem", "/boot/efi/EFI/debian/grubx64.efi", 259, 1, ""},
		{"relative path", "etc/passwd", 259, 2, ""},
		// A readlink from the container's own namespace of its bind at
		// /work: the host has 259:2 at "/", so the pure function takes
		// the path as the host's (the Resolver checks whether it exists).
		{"container path on a device the host has at that path", "/work/go.mod", 259, 2, ""},
	})
}

func TestTranslateDockerReverse(t *testing.T) {
	runTranslate(t, "docker", true, []translateCase{
		{"root file", "/etc/passwd", 0, 115, dockerMerged + "/etc/passwd"},
		{"hosts", "/etc/hosts", 259, 2, "/var/lib/docker/containers/" + dockerID + "/hosts"},
		{"volume", "/data/base/1", 259, 2, "/var/lib/docker/volumes/pgdata/_data/base/1"},
		{"container tmpfs", "/dev/shm/x", 0, 122, ""},
	})
}

func TestTranslateKubernetes(t *testing.T) {
	secret := podDir + "/volumes/kubernetes.io~secret/db-creds"
	cm := podDir + "/volumes/kubernetes.io~configmap/app-config"
	token := podDir + "/volumes/kubernetes.io~projected/kube-api-access-x7k2p"
	runTranslate(t, "kubernetes", false, []translateCase{
		{"secret file (kubelet writes ..data versions)", secret + "/..2026_11_26_21_00_00.123456789/password", 0, 312, "/etc/app/..2026_11_26_21_00_00.123456789/password"},
		{"secret volume root", secret, 0, 312, "/etc/app"},
		{"configmap file, real name behind ..data", cm + "/" + cmVersion + "/log.yaml", 259, 1, "/etc/config/" + cmVersion + "/log.yaml"},
		{"configmap subPath file bind wins (longest root)", cm + "/" + cmVersion + "/app.yaml", 259, 1, "/etc/app.yaml"},
		{"service account token", token + "/..2026_11_26_20_58_01.998877665/token", 0, 311, "/run/secrets/kubernetes.io/serviceaccount/..2026_11_26_20_58_01.998877665/token"},
		{"rootfs overlay", podRootfs + "/usr/bin/python3", 0, 320, "/usr/bin/python3"},
		{"etc-hosts", podDir + "/etc-hosts", 259, 1, "/etc/hosts"},
		{"termination log under the container's /dev", podDir + "/containers/app/5e0b7c1d", 259, 1, "/dev/termination-log"},
		{"sandbox hostname", "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/" + sandboxID + "/hostname", 259, 1, "/etc/hostname"},
		{"shm of the sandbox", "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/" + sandboxID + "/shm/sem.x", 0, 316, "/dev/shm/sem.x"},
		{"another pod's secret", "/var/lib/kubelet/pods/" + otherPodUID + "/volumes/kubernetes.io~secret/db-creds/password", 0, 313, ""},
		{"pause container's rootfs", "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + sandboxID + "/rootfs/pause", 0, 317, ""},
		{"kubelet dir of the same pod", podDir + "/plugins/x", 259, 1, ""},
		{"node file", "/etc/kubernetes/kubelet.conf", 259, 1, ""},
	})
}

// TestTranslateLab covers the mount shapes one at a time: see
// testdata/README.md for the lab layout.
func TestTranslateLab(t *testing.T) {
	runTranslate(t, "lab", false, []translateCase{
		{"single file bind", "/srv/lab/a/secret.txt", 0, 50, "/etc/secret.txt"},
		{"sibling of the file", "/srv/lab/a/other.txt", 0, 50, ""},
		{"directory bind", "/srv/lab/vol/f", 0, 50, "/data/f"},
		{"nested bind of a subdirectory", "/srv/lab/vol/sub/f", 0, 50, "/data/deep/sub/f"},
		{"nested bind's source is still visible through the outer bind", "/srv/lab/vol/sub", 0, 50, "/data/deep/sub"},
		{"covered by a submount of another subtree", "/srv/lab/vol/x/f", 0, 50, ""},
		{"the submount's own files", "/srv/lab/other/f", 0, 50, "/data/x/f"},
		{"overmounted at its mount point", "/srv/lab/old/f", 0, 50, ""},
		{"the overmount's files", "/srv/other/f", 0, 51, ""},
		{"overmounted above its mount point", "/srv/lab/inner/f", 0, 50, ""},
		{"stacked binds: lower one hidden", "/srv/lab/first/f", 0, 50, ""},
		{"stacked binds: top one", "/srv/lab/second/f", 0, 50, "/stack/f"},
		{"longest root wins", "/srv/lab/share/vol2/f", 0, 50, "/v2/f"},
		{"shorter root still serves the rest", "/srv/lab/share/f", 0, 50, "/all/f"},
		{"host path on a hidden host mount", "/srv/hidden/f", 0, 60, "/h/f"},
		{"host path on its overmount", "/srv/hidden/f", 0, 61, ""},
		{"octal escapes in both tables", "/srv/with space/dir one/f", 0, 62, "/spaced/f"},
		{"mount only in the process's namespace", "/run/private/f", 0, 70, "/run/private/f"},
		{"wrong device on the host's /run", "/run/f", 0, 70, ""},
		{"not under any mount of the device", "/srv/lab", 0, 99, ""},
	})
}

func TestHasPathPrefix(t *testing.T) {
	for _, tc := range []struct {
		p, prefix string
		want      bool
	}{
		{"/a/b", "/", true},
		{"/", "/", true},
		{"/a", "/a", true},
		{"/a/b", "/a", true},
		{"/ab", "/a", false},
		{"/a", "/a/b", false},
		{"a", "/", false},
	} {
		if got := hasPathPrefix(tc.p, tc.prefix); got != tc.want {
			t.Errorf("hasPathPrefix(%q, %q) = %v, want %v", tc.p, tc.prefix, got, tc.want)
		}
	}
}
