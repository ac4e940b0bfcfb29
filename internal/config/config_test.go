package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadOverDefaults(t *testing.T) {
	cfg, err := Load(strings.NewReader(`
policies: [/etc/p]
failureMode: closed
deadline: 100ms
audit: {file: /var/log/x.jsonl, stdout: true}
`), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FailureMode != FailClosed || cfg.Deadline != 100*time.Millisecond || cfg.Audit.File != "/var/log/x.jsonl" || !cfg.Audit.Stdout {
		t.Fatalf("got %+v", cfg)
	}
	if cfg.Audit.MaxSizeMB != 100 || cfg.Mode != "enforce" || cfg.StatusSocket == "" {
		t.Fatalf("defaults lost: %+v", cfg)
	}
	tu := cfg.Tune(Facts{Hypervisor: "kvm", CPUs: 2})
	if cfg.Deadline != 100*time.Millisecond || tu.Workers != 2 || cfg.QueueSize != 2048 {
		t.Fatalf("explicit deadline must survive tuning: %+v %+v", cfg, tu)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownFieldIsAnError(t *testing.T) {
	_, err := Load(strings.NewReader("failuremode: closed\n"), "c.yaml")
	if err == nil || !strings.Contains(err.Error(), "c.yaml") || !strings.Contains(err.Error(), "failuremode") {
		t.Fatalf("got %v", err)
	}
}

func TestTuneToEnvironment(t *testing.T) {
	for _, c := range []struct {
		f    Facts
		want time.Duration
	}{
		{Facts{Hypervisor: "none", CPUs: 8}, BaseDeadline},
		{Facts{Hypervisor: "microsoft", CPUs: 8}, 2 * BaseDeadline},
		{Facts{Hypervisor: "kvm", Nested: true, CPUs: 8}, 4 * BaseDeadline},
	} {
		cfg := Default()
		tu := cfg.Tune(c.f)
		if cfg.Deadline != c.want || tu.Workers != 8 || tu.Reason == "" {
			t.Errorf("%+v: deadline %s workers %d, want %s", c.f, cfg.Deadline, tu.Workers, c.want)
		}
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	cfg := Default()
	cfg.Tune(Facts{CPUs: 2})
	cfg.Mode = "block"
	cfg.FailureMode = "maybe"
	cfg.MetricsAddress = "nonsense"
	cfg.Audit.File = "relative.log"
	err := cfg.Validate()
	for _, want := range []string{`mode: "block"`, `failureMode: "maybe"`, `metricsAddress: "nonsense" must be host:port`, `audit.file: "relative.log"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestMetricsAddress(t *testing.T) {
	for addr, ok := range map[string]bool{
		"":               true,
		"127.0.0.1:9477": true,
		"localhost:9477": true,
		"[::1]:9477":     true,
		"0.0.0.0:9477":   true, // a pod: the kubelet probes the pod's IP
		":9477":          true,
		"10.0.0.5:9477":  true,
		"nonsense":       false,
		"0.0.0.0":        false,
		"0.0.0.0:http":   false,
		"0.0.0.0:70000":  false,
		"a b:9477":       false,
	} {
		cfg := Default()
		cfg.Tune(Facts{CPUs: 2})
		cfg.MetricsAddress = addr
		err := cfg.Validate()
		if (err == nil) != ok {
			t.Errorf("%q: got %v, want accepted=%v", addr, err, ok)
		}
	}
}

func TestShippedConfigIsValid(t *testing.T) {
	cfg, err := LoadFile("../../deploy/systemd/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Tune(Facts{Hypervisor: "kvm", CPUs: 2})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Deadline != 2*BaseDeadline || cfg.FailureMode != FailOpen {
		t.Fatalf("got %+v", cfg)
	}
}
