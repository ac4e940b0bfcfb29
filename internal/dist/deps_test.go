package dist

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The shipped binaries leave out what their build tags promise: the
// packages (machines outside Kubernetes) link neither client-go nor a cloud
// SDK, the image links client-go for its in-cluster side but no cloud SDK.
// A new import of the SDKs from the agent's packages fails here before it
// doubles the agent's memory.
func TestShippedBuildsLeaveOutTheFleetSDKs(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipping: no go tool")
	}
	repo, err := FindRepo(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	deps := func(tags []string) string {
		cmd := exec.Command(goTool, "list", "-deps", "-tags", strings.Join(tags, ","), "./cmd/drmfilter")
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -tags %v: %v", tags, err)
		}
		return string(out)
	}
	cloud := []string{"github.com/Azure/azure-sdk-for-go/", "github.com/aws/aws-sdk-go-v2/"}
	pkgs := deps(PackageTags)
	for _, sdk := range append(cloud, "k8s.io/client-go/") {
		if strings.Contains(pkgs, sdk) {
			t.Errorf("the packages' binary (tags %v) links %s", PackageTags, sdk)
		}
	}
	img := deps(ImageTags)
	for _, sdk := range cloud {
		if strings.Contains(img, sdk) {
			t.Errorf("the image's binary (tags %v) links %s", ImageTags, sdk)
		}
	}
	if !strings.Contains(img, "k8s.io/client-go/") {
		t.Errorf("the image's binary (tags %v) has no client-go: it cannot run in a cluster", ImageTags)
	}
}
