package kubeapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// readyTimeout bounds the wait for /readyz (normally about 3 s).
	readyTimeout = 90 * time.Second
	// stopGrace is how long a process gets after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// attempts is how often start tries again when a port chosen as free
	// was taken meanwhile by someone else.
	attempts = 3
	// tailLines is how many lines of each log a failed start shows.
	tailLines = 40
)

// start runs etcd and kube-apiserver with their files in dir and waits
// until the API server is ready. It retries with new ports when one was
// taken between choosing and binding it.
func start(bins binaries, dir string, logf func(string, ...any)) (*Server, error) {
	var errs []error
	for i := 1; i <= attempts; i++ {
		sub := filepath.Join(dir, "kube-"+strconv.Itoa(i))
		if err := os.Mkdir(sub, 0o700); err != nil {
			return nil, fmt.Errorf("server dir: %w", err)
		}
		srv, err := startOnce(bins, sub, logf)
		if err == nil {
			return srv, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", i, err))
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errPortTaken = errors.New("a port chosen as free was taken meanwhile")

// proc is a started child process.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string        // path of its stdout and stderr
	done chan struct{} // closed when it has exited
	err  error         // its exit status, once done is closed
}

func startProc(name, log string, path string, args ...string) (*proc, error) {
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	defer f.Close() // the child holds its own copy
	cmd := exec.Command(path, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends p: SIGTERM, then SIGKILL after stopGrace, and waits for it to
// exit. It is an error only if p could not be made to exit.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(stopGrace):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// tail returns the last n lines of p's log, indented.
func (p *proc) tail(n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("    (cannot read %s: %v)\n", p.log, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- last %d lines of %s:\n", len(lines), p.log)
	for _, l := range lines {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// freePorts returns n distinct TCP ports that were free on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func startOnce(bins binaries, dir string, logf func(string, ...any)) (srv *Server, err error) {
	begin := time.Now()
	creds, err := newCredentials(dir)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	securePort := ports[2]
	host := fmt.Sprintf("https://127.0.0.1:%d", securePort)

	var procs []*proc
	// On failure: stop what was started and show the end of every log.
	defer func() {
		if err == nil {
			return
		}
		var tails strings.Builder
		for i := len(procs) - 1; i >= 0; i-- {
			if serr := procs[i].stop(); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		for _, p := range procs {
			tails.WriteString(p.tail(tailLines))
		}
		for _, p := range procs {
			if data, rerr := os.ReadFile(p.log); rerr == nil && bytes.Contains(data, []byte("address already in use")) {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
				break
			}
		}
		if tails.Len() > 0 {
			err = fmt.Errorf("%w\n%s", err, tails.String())
		}
	}()

	etcd, err := startProc("etcd", filepath.Join(dir, "etcd.log"), bins.etcd,
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd-data"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-outputs=stderr",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	procs = append(procs, etcd)

	certDir := filepath.Join(dir, "apiserver-certs")
	apiserver, err := startProc("kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), bins.apiserver,
		"--etcd-servers="+clientURL,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(securePort),
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--cert-dir="+certDir,
		"--client-ca-file="+creds.clientCAFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+creds.saPublicFile,
		"--service-account-signing-key-file="+creds.saKeyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	procs = append(procs, apiserver)

	// The server writes its self-signed serving certificate (followed by
	// its CA) to the cert dir before it listens.
	servingCert := filepath.Join(certDir, "apiserver.crt")
	cfg := &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CertData: creds.adminCert,
			KeyData:  creds.adminKey,
		},
		// Tests are chatty; client-go's default limit is 5 requests/s.
		QPS:   200,
		Burst: 400,
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := waitReady(ctx, cfg, servingCert, procs); err != nil {
		return nil, err
	}

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(kubeconfig, cfg); err != nil {
		return nil, err
	}
	logf("kubeapi: kube-apiserver ready at %s after %v (etcd pid %d, kube-apiserver pid %d, files in %s)",
		host, time.Since(begin).Round(time.Millisecond), etcd.cmd.Process.Pid, apiserver.cmd.Process.Pid, dir)

	return &Server{
		Config:     cfg,
		Kubeconfig: kubeconfig,
		URL:        host,
		Dir:        dir,
		stop: func() error {
			return errors.Join(apiserver.stop(), etcd.stop())
		},
	}, nil
}

// waitReady polls GET /readyz until it answers 200 "ok", a process exits,
// or ctx ends. It fills cfg's CA from servingCert once that file exists.
func waitReady(ctx context.Context, cfg *rest.Config, servingCert string, procs []*proc) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var client *http.Client
	last := errors.New("serving certificate not written yet")
	for {
		for _, p := range procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited before the API server was ready: %v", p.name, p.err)
			default:
			}
		}
		if client == nil {
			if ca, err := os.ReadFile(servingCert); err == nil && len(ca) > 0 {
				cfg.TLSClientConfig.CAData = ca
				c, err := rest.HTTPClientFor(cfg)
				if err != nil {
					return fmt.Errorf("admin client: %w", err)
				}
				c.Timeout = 5 * time.Second
				client = c
			}
		}
		if client != nil {
			last = probeReady(ctx, client, cfg.Host+"/readyz")
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("API server not ready after %v: %w", readyTimeout, last)
		case <-tick.C:
		}
	}
}

func probeReady(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("readyz request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET /readyz: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("GET /readyz: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// writeKubeconfig writes a kubeconfig for cfg's admin, whose cluster, user
// and current context are named ContextName.
func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[ContextName] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.TLSClientConfig.CAData,
	}
	kc.AuthInfos[ContextName] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.TLSClientConfig.CertData,
		ClientKeyData:         cfg.TLSClientConfig.KeyData,
	}
	kc.Contexts[ContextName] = &clientcmdapi.Context{
		Cluster:   ContextName,
		AuthInfo:  ContextName,
		Namespace: "default",
	}
	kc.CurrentContext = ContextName
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}
