package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drmfilter/drmfilter/internal/dist"
)

func repoDir(t *testing.T) string {
	t.Helper()
	d, err := dist.FindRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// buildAndLoad builds the image from binary, writes the tarball and reads
// it back by its tag, as `docker load` would find it.
func buildAndLoad(t *testing.T, binary, version, arch string) v1.Image {
	t.Helper()
	img, err := Build(Options{RepoDir: repoDir(t), Binary: binary, Version: version, Arch: arch, Created: time.Unix(1700000000, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := Write(path, img, version); err != nil {
		t.Fatal(err)
	}
	tag, err := Tag(version)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("read back %s as %s: %v", path, tag, err)
	}
	return loaded
}

// files returns the regular files of the image's layers by path.
func files(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Errorf("%d layers, want 1", len(layers))
	}
	out := map[string][]byte{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if hdr.Typeflag == tar.TypeReg {
				data, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				if hdr.Name == BinaryPath[1:] && hdr.Mode != 0o755 {
					t.Errorf("%s has mode %o, want 755", hdr.Name, hdr.Mode)
				}
				out["/"+hdr.Name] = data
			}
		}
		rc.Close()
	}
	return out
}

func TestImageRunsTheStaticBinary(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("skipping: no go tool to build the agent")
	}
	const version = "v9.8.7-test.1"
	binary := filepath.Join(t.TempDir(), "drmfilter")
	// Building the whole agent is the slow part of this test: leave a margin
	// before go test's own deadline so that a slow build fails with a
	// message, not a panic.
	ctx, cancel := context.WithCancel(context.Background())
	if d, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d.Add(-30*time.Second))
	}
	defer cancel()
	// The host's architecture, so that the extracted binary can run here.
	arch := goarch(t)
	if err := dist.BuildBinary(ctx, dist.BuildOptions{RepoDir: repoDir(t), Version: version, Arch: arch, Output: binary, Tags: dist.ImageTags}); err != nil {
		if ctx.Err() != nil {
			t.Fatalf("building drmfilter did not finish before the test's deadline (go test -timeout): %v", err)
		}
		t.Fatal(err)
	}
	img := buildAndLoad(t, binary, version, arch)

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != arch {
		t.Errorf("platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, arch)
	}
	if got := cfg.Config.Entrypoint; len(got) != 1 || got[0] != "/usr/bin/drmfilter" {
		t.Errorf("entrypoint %q, want [/usr/bin/drmfilter]", got)
	}
	if len(cfg.Config.Cmd) != 0 {
		t.Errorf("cmd %q, want none (the DaemonSet passes the arguments)", cfg.Config.Cmd)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.source":   dist.Repository,
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.title":    "drmfilter",
		"org.opencontainers.image.licenses": dist.License,
	} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}

	fs := files(t, img)
	for _, p := range []string{"/etc/passwd", "/etc/group"} {
		want, err := os.ReadFile(filepath.Join(repoDir(t), "deploy", "image", p))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fs[p], want) {
			t.Errorf("%s in the image differs from deploy/image%s", p, p)
		}
	}
	data, ok := fs[BinaryPath]
	if !ok {
		t.Fatalf("no %s in the image; files: %v", BinaryPath, keys(fs))
	}
	extracted := filepath.Join(t.TempDir(), "drmfilter")
	if err := os.WriteFile(extracted, data, 0o755); err != nil {
		t.Fatal(err)
	}
	requireStatic(t, extracted)

	out, err := exec.CommandContext(ctx, extracted, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("drmfilter version from the image: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "drmfilter "+version+" ") {
		t.Errorf("drmfilter version printed %q, want the stamped version %s", out, version)
	}
	// The image's agent runs in a cluster (it knows --kubernetes) and
	// leaves out the fleet commands (dist.ImageTags).
	out, _ = exec.CommandContext(ctx, extracted, "run", "--help").CombinedOutput()
	if !strings.Contains(string(out), "--kubernetes") {
		t.Errorf("the image's drmfilter run has no --kubernetes flag:\n%s", out)
	}
	out, err = exec.CommandContext(ctx, extracted, "deploy", "kubernetes").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 || !strings.Contains(string(out), "built for nodes") {
		t.Errorf("drmfilter deploy in the image: %v\n%s", err, out)
	}
}

// requireStatic fails t unless path is an ELF executable with no
// interpreter (PT_INTERP) and no shared libraries (DT_NEEDED): it runs in a
// scratch image.
func requireStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("the image's binary is not ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && f.Section(".dynamic") != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
}

func TestImageForArm64(t *testing.T) {
	// The layout does not depend on what the binary is: a stand-in will do.
	bin := filepath.Join(t.TempDir(), "drmfilter")
	if err := os.WriteFile(bin, []byte("stand-in"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := buildAndLoad(t, bin, "1.0.0+g1a2b3c", "arm64")
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "arm64" {
		t.Errorf("architecture %s, want arm64", cfg.Architecture)
	}
	if got := cfg.Config.Labels["org.opencontainers.image.version"]; got != "1.0.0+g1a2b3c" {
		t.Errorf("version label %q, want the version unchanged", got)
	}
	if _, err := Build(Options{RepoDir: repoDir(t), Binary: bin, Version: "1.0.0", Arch: "riscv64"}); err == nil {
		t.Error("Build accepted architecture riscv64")
	}
}

// The Containerfile builds the same image for people with a container
// engine: its ENTRYPOINT, USER and labels must be the Go-built image's.
func TestContainerfileMatchesImage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoDir(t), "deploy", "image", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// The final stage: from the last FROM on, continuation lines joined.
	text := string(data)
	text = text[strings.LastIndex(text, "\nFROM "):]
	text = strings.ReplaceAll(text, "\\\n", " ")

	ep, _ := json.Marshal(Entrypoint)
	if !strings.Contains(text, "\nENTRYPOINT "+string(ep)+"\n") {
		t.Errorf("Containerfile's final stage has no ENTRYPOINT %s", ep)
	}
	if strings.Contains(text, "\nCMD ") {
		t.Error("Containerfile sets CMD; the image has none")
	}
	if !strings.Contains(text, "\nFROM scratch\n") {
		t.Error("Containerfile's final stage is not FROM scratch")
	}
	for _, copyLine := range []string{"COPY deploy/image/etc/passwd deploy/image/etc/group /etc/", "/usr/bin/drmfilter\n", "\nUSER 0:0\n"} {
		if !strings.Contains(text, copyLine) {
			t.Errorf("Containerfile's final stage lacks %q", copyLine)
		}
	}
	labelRE := regexp.MustCompile(`(org\.opencontainers\.image\.[a-z]+)="([^"]*)"`)
	got := map[string]string{}
	for _, m := range labelRE.FindAllStringSubmatch(text, -1) {
		got[m[1]] = m[2]
	}
	want := Labels("$VERSION")
	if !maps.Equal(got, want) {
		t.Errorf("Containerfile labels\n%v\nwant (as the Go-built image)\n%v", got, want)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
