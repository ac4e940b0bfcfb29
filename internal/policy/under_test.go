package policy

import "testing"

// TestPathsUnder: the mount points that can hold files of the shipped
// Kubernetes secrets policy are the secret volumes and the directories
// above them, not a pod's other volumes.
func TestPathsUnder(t *testing.T) {
	m := mustMatcher(t, `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: secrets}
spec:
  files:
    paths: ["/var/lib/kubelet/pods/*/volumes/kubernetes.io~secret/**", "/etc/ssh/ssh_host_*_key"]
    containerPaths: ["/run/secrets/**"]
  rules:
    - {name: deny, operations: [open], effect: deny}
`)
	for dir, want := range map[string]bool{
		"/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~secret/tok": true,
		"/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~secret":     true,
		"/var/lib/kubelet":          true,
		"/etc/ssh/ssh_host_rsa_key": true,
		"/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~empty-dir/data": false,
		"/var/lib/kubelet/pods/0a1b/volumes/kubernetes.io~projected/x":    false,
		"/etc/ssh/sshd_config.d": false,
		"/run/secrets":           false, // a container path: Roots reports anywhere
	} {
		if got := m.PathsUnder(dir); got != want {
			t.Errorf("PathsUnder(%q) = %v, want %v", dir, got, want)
		}
	}
}
