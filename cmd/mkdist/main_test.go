package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no target given"},
		{[]string{"--arch", "arm64"}, "no target given"},
		{[]string{"tgz"}, `unknown target "tgz"`},
		{[]string{"deb", "--arch", "s390x"}, `unsupported architecture "s390x"`},
		{[]string{"deb", "--version", "latest"}, `version "latest" is not a semantic version`},
		{[]string{"deb", "extra"}, "unexpected arguments"},
		{[]string{"deb", "--nope"}, "flag provided but not defined"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mkdist %q: %v; want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

// All artifacts from a given binary (no build): the conventional names in
// --out, for both architectures.
func TestAllFromBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "drmfilter")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for arch, want := range map[string][]string{
		"amd64": {"drmfilter_1.2.3_amd64.deb", "drmfilter-1.2.3-1.x86_64.rpm", "drmfilter_v1.2.3_linux_amd64.image.tar"},
		"arm64": {"drmfilter_1.2.3_arm64.deb", "drmfilter-1.2.3-1.aarch64.rpm", "drmfilter_v1.2.3_linux_arm64.image.tar"},
	} {
		out := t.TempDir()
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"all", "--version", "v1.2.3", "--arch", arch, "--binary", bin, "--out", out}, &stdout, &stderr); err != nil {
			t.Fatalf("mkdist all --arch %s: %v\n%s", arch, err, stderr.String())
		}
		for _, name := range want {
			fi, err := os.Stat(filepath.Join(out, name))
			if err != nil || fi.Size() == 0 {
				t.Errorf("--arch %s: %s missing or empty (%v)", arch, name, err)
			}
			if !strings.Contains(stdout.String(), name) {
				t.Errorf("--arch %s: output does not name %s:\n%s", arch, name, stdout.String())
			}
		}
		if entries, _ := os.ReadDir(out); len(entries) != len(want) {
			t.Errorf("--arch %s: %d files in --out, want %d (no stray temporary files)", arch, len(entries), len(want))
		}
	}
}
