package dist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	for _, v := range []string{"1.2.3", "v1.2.3", "0.0.0-dev+g1a2b3c4d5e6f", "v2.0.0-rc.1"} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("CheckVersion(%q): %v", v, err)
		}
	}
	for _, v := range []string{"", "latest", "1.2", "v01.2.3", "1.2.3 ", "1.2.3-"} {
		if err := CheckVersion(v); err == nil {
			t.Errorf("CheckVersion(%q) accepted it", v)
		}
	}
}

func TestImageTag(t *testing.T) {
	if got, want := ImageTag("0.0.0-dev+g1a2b3c"), "0.0.0-dev-g1a2b3c"; got != want {
		t.Errorf("ImageTag = %q, want %q", got, want)
	}
}

func TestCheckArch(t *testing.T) {
	if err := CheckArch("arm64"); err != nil {
		t.Error(err)
	}
	if err := CheckArch("386"); err == nil || !strings.Contains(err.Error(), "amd64, arm64") {
		t.Errorf("CheckArch(386) = %v, want an error naming the supported ones", err)
	}
}

func TestFindRepo(t *testing.T) {
	root, err := FindRepo(filepath.Join("..", "..", "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "drmfilter", "main.go")); err != nil {
		t.Errorf("FindRepo found %s, which is not the drmfilter checkout: %v", root, err)
	}
	// Another module's go.mod is not the checkout.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FindRepo(other); err == nil {
		t.Error("FindRepo accepted a directory of another module")
	}
}

func TestBuildBinaryRejectsBadOptions(t *testing.T) {
	if err := BuildBinary(t.Context(), BuildOptions{Version: "1.0.0", Arch: "mips"}); err == nil {
		t.Error("BuildBinary accepted arch mips")
	}
	if err := BuildBinary(t.Context(), BuildOptions{Arch: "amd64"}); err == nil {
		t.Error("BuildBinary accepted an empty version")
	}
}
