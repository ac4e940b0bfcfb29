package kubernetes_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/drmfilter/drmfilter/internal/deploy/kubernetes"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/policy"
)

// The kubelet's probes ask the agent over its root-only status socket
// (`drmfilter status --check`), never a TCP port: any process in the pod
// could listen on a port while the agent is down and answer for it. The
// probe command is one the CLI accepts, for the socket the agent is told
// to create, in a directory the agent can make root's alone (it refuses
// the emptyDir itself, which the kubelet makes 0777).
func TestDaemonSetProbesAskTheStatusSocket(t *testing.T) {
	dir := t.TempDir()
	policyFile(t, dir, "secrets.yaml", "/srv/secrets")
	p, err := kubernetes.ReadPolicies([]string{dir}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := kubernetes.Build(kubernetes.Options{Image: "registry.example/drmfilter:test"}, p)
	if err != nil {
		t.Fatal(err)
	}
	c := m.DaemonSet.Spec.Template.Spec.Containers[0]
	var socket string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--status-socket="); ok {
			socket = v
		}
	}
	if socket == "" {
		t.Fatalf("the agent's args name no --status-socket: %v", c.Args)
	}

	for _, pr := range []struct {
		check string
		probe *corev1ac.ProbeApplyConfiguration
	}{{"live", c.LivenessProbe}, {"ready", c.ReadinessProbe}} {
		if pr.probe == nil || pr.probe.Exec == nil || pr.probe.HTTPGet != nil || pr.probe.TCPSocket != nil || pr.probe.GRPC != nil {
			t.Errorf("%s probe: want an exec probe and nothing else, got %+v", pr.check, pr.probe)
			continue
		}
		cmd := pr.probe.Exec.Command
		// The image's binary (deploy/image/Containerfile), without a shell.
		want := []string{"/usr/bin/drmfilter", "status", "--check=" + pr.check, "--socket=" + socket}
		if !slices.Equal(cmd, want) {
			t.Errorf("%s probe command %q, want %q", pr.check, cmd, want)
			continue
		}
		// Run it as the kubelet would, with the socket moved to where no
		// agent runs: it fails as a health check does, not as a command
		// line the CLI does not know.
		args := slices.Clone(cmd[1:])
		args[len(args)-1] = "--socket=" + filepath.Join(t.TempDir(), "status.sock")
		code, out, errOut := drmfilter(t, args...)
		if code != exitcode.Failure || out != "" || !strings.Contains(errOut, "not "+pr.check+": is the agent running?") {
			t.Errorf("%s probe without an agent: exit %d, stdout %q, stderr %q", pr.check, code, out, errOut)
		}
	}

	// The socket's directory is not the emptyDir's mount itself but below it.
	var runMount string
	for _, vm := range c.VolumeMounts {
		for _, v := range m.DaemonSet.Spec.Template.Spec.Volumes {
			if *v.Name == *vm.Name && v.EmptyDir != nil {
				runMount = *vm.MountPath
			}
		}
	}
	if sockDir := filepath.Dir(socket); runMount == "" || runMount == sockDir || !strings.HasPrefix(sockDir, runMount+"/") {
		t.Errorf("status socket %s: its directory must be below the emptyDir mounted at %q, not be it", socket, runMount)
	}
}
