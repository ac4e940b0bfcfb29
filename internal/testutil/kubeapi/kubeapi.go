// Package kubeapi owns the real Kubernetes control plane of drmfilter's
// integration tests: an etcd and a kube-apiserver started on free loopback
// ports by the tests themselves, with RBAC on, an admin identity (client
// certificate in group system:masters) and impersonation of any other user,
// for instance the agent's ServiceAccount, to check that RBAC rules are
// sufficient and minimal.
//
// Binaries: kube-apiserver from $DRMFILTER_KUBE_APISERVER, else from the
// cache that .ci/kube-apiserver.sh builds into
// (${DRMFILTER_KUBE_CACHE:-/var/cache/drmfilter}/kube-apiserver-v1.37.2/kube-apiserver);
// etcd from PATH (Debian's etcd-server). When one is missing the test is
// skipped with the reason, or failed when CI=true (testutil.InCI). Nothing
// here needs root.
//
// There is no kubelet and no controller manager: objects are stored and
// validated, DaemonSets are never scheduled and pods never run; tests write
// pod and node status themselves.
//
// One server per test: Start(t). One server shared by all tests of a test
// binary (it takes a few seconds to start), with TestMain:
//
//	var kube kubeapi.Shared
//
//	func TestMain(m *testing.M) { os.Exit(kube.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		srv := kube.Get(t) // started on first use
//		...
//	}
//
// Tests that share a server must not depend on a clean cluster: each
// creates its own namespace with a unique name. Without Run (or Stop) the
// processes still die with the test binary (parent-death signal on Linux),
// but their temp dir is left behind.
//
// Files: kubeapi.go (Server, Start, Shared, discovery), process.go (start,
// readiness and stop of etcd and kube-apiserver), certs.go (client
// certificates, service-account key), sysproc_*.go (parent-death signal).
package kubeapi

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

const (
	// Version is the kube-apiserver release the tests are written against
	// and that .ci/kube-apiserver.sh builds.
	Version = "v1.37.2"

	// EnvAPIServer names the environment variable holding the path of the
	// kube-apiserver binary.
	EnvAPIServer = "DRMFILTER_KUBE_APISERVER"

	// EnvCache names the environment variable holding the root of the build
	// cache (default DefaultCache).
	EnvCache = "DRMFILTER_KUBE_CACHE"

	// DefaultCache is the cache root when EnvCache is unset.
	DefaultCache = "/var/cache/drmfilter"

	// ContextName is the name of the cluster, user and context in the
	// kubeconfig file written for the admin.
	ContextName = "drmfilter-test"

	// AdminUser is the admin's user name (its group is system:masters).
	AdminUser = "drmfilter-admin"
)

// Server is a running etcd and kube-apiserver.
type Server struct {
	// Config authenticates as the admin (group system:masters). Callers
	// may modify copies (rest.CopyConfig), not this one.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for the admin, whose
	// current context is ContextName, for CLI tests (--kubeconfig).
	Kubeconfig string
	// URL is the API server's https URL on loopback.
	URL string
	// Dir holds the server's files: logs (etcd.log, kube-apiserver.log),
	// etcd data, certificates and keys.
	Dir string

	stop func() error
}

// Impersonate returns a copy of the admin Config that acts as user with
// groups (Impersonate-User and Impersonate-Group headers). With no groups
// the API server adds system:authenticated, and the ServiceAccount groups
// for a ServiceAccount user name.
func (s *Server) Impersonate(user string, groups ...string) *rest.Config {
	c := rest.CopyConfig(s.Config)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

// ImpersonateServiceAccount returns a copy of the admin Config that acts as
// the ServiceAccount namespace/name, with the groups its token would give
// it.
func (s *Server) ImpersonateServiceAccount(namespace, name string) *rest.Config {
	user, groups := ServiceAccountUser(namespace, name)
	return s.Impersonate(user, groups...)
}

// ServiceAccountUser returns the user name and groups that the API server
// gives the ServiceAccount namespace/name.
func ServiceAccountUser(namespace, name string) (user string, groups []string) {
	return "system:serviceaccount:" + namespace + ":" + name,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
}

// Start starts etcd and kube-apiserver for t, waits until /readyz answers
// ok, and stops both in t.Cleanup. It skips t (fails it in CI) when a
// binary is missing, and fails t when the server does not start; the error
// then ends with the last lines of both logs.
func Start(t testing.TB) *Server {
	t.Helper()
	bins, err := findBinaries()
	if err != nil {
		unavailable(t, err)
	}
	srv, err := start(bins, t.TempDir(), t.Logf)
	if err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("kubeapi: %v", err)
		}
	})
	return srv
}

// Shared is one Server for all tests of a test binary, started on the first
// Get and stopped by Run (or Stop) after the tests. Declare it as a variable
// of the test package; its zero value is ready to use.
type Shared struct {
	mu      sync.Mutex
	srv     *Server
	dir     string
	err     error // start failed: every Get fails with it
	missing error // a binary is missing: every Get skips (fails in CI)
	stopped bool
}

// Run runs the tests of m and then stops the server if one was started.
// Use it from TestMain: os.Exit(shared.Run(m)).
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "kubeapi: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Get returns the shared Server, starting it on the first call. Like
// Start, it skips t (fails it in CI) when a binary is missing and fails t
// when the server does not start.
func (s *Shared) Get(t testing.TB) *Server {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		t.Fatal("kubeapi: Shared.Get after Stop")
	case s.srv != nil:
		return s.srv
	case s.missing != nil:
		unavailable(t, s.missing)
	case s.err != nil:
		t.Fatalf("kubeapi: shared server: %v", s.err)
	}
	bins, err := findBinaries()
	if err != nil {
		s.missing = err
		unavailable(t, err)
	}
	dir, err := os.MkdirTemp("", "drmfilter-kubeapi-")
	if err != nil {
		s.err = fmt.Errorf("temp dir: %w", err)
		t.Fatalf("kubeapi: %v", s.err)
	}
	s.dir = dir
	srv, err := start(bins, dir, t.Logf)
	if err != nil {
		s.err = err
		t.Fatalf("kubeapi: shared server: %v", err)
	}
	s.srv = srv
	return srv
}

// Stop stops the shared server, if it was started, and removes its files.
// Later calls to Get fail.
func (s *Shared) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	var errs []error
	if s.srv != nil {
		errs = append(errs, s.srv.stop())
		s.srv = nil
	}
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", s.dir, err))
		}
		s.dir = ""
	}
	return errors.Join(errs...)
}

// binaries are the programs Start runs.
type binaries struct {
	apiserver, etcd string
}

// APIServerPath returns where the kube-apiserver binary is looked for:
// $DRMFILTER_KUBE_APISERVER, else the build cache of .ci/kube-apiserver.sh.
func APIServerPath() string {
	if p := os.Getenv(EnvAPIServer); p != "" {
		return p
	}
	root := os.Getenv(EnvCache)
	if root == "" {
		root = DefaultCache
	}
	return filepath.Join(root, "kube-apiserver-"+Version, "kube-apiserver")
}

// findBinaries locates kube-apiserver and etcd, or says what is missing and
// how to get it.
func findBinaries() (binaries, error) {
	var b binaries
	var errs []error
	b.apiserver = APIServerPath()
	if fi, err := os.Stat(b.apiserver); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		errs = append(errs, fmt.Errorf("kube-apiserver not found at %s (set %s, or build it with .ci/kube-apiserver.sh)", b.apiserver, EnvAPIServer))
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		errs = append(errs, fmt.Errorf("etcd not found on PATH (apt-get install etcd-server, or run .ci/kube-apiserver.sh as root): %w", err))
	}
	b.etcd = etcd
	return b, errors.Join(errs...)
}

// unavailable skips t because of err, or fails it in CI, following the
// policy of package testutil.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if testutil.InCI() {
		t.Fatalf("CI=true but %v", err)
	}
	t.Skipf("skipping: %v", err)
}
