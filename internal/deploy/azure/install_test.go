package azure_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/deploy/azure"
)

func TestInstallValidate(t *testing.T) {
	for _, tc := range []struct {
		edit func(*azure.Install)
		want string
	}{
		{func(*azure.Install) {}, ""},
		{func(i *azure.Install) { i.PackageURL = "" }, "--package-url is required"},
		{func(i *azure.Install) { i.PackageURL = "ftp://host/p.deb?sig=SECRET" }, "--package-url: ftp://host/p.deb?<redacted> is not an http(s) URL"},
		{func(i *azure.Install) { i.SHA256 = "abc" }, "--sha256: want 64 lowercase hex digits"},
		{func(i *azure.Install) { i.PolicyURLs = []string{"policies/finance.yaml"} }, "--policy-url: policies/finance.yaml is not an http(s) URL"},
		{func(i *azure.Install) { i.Mode = "strict" }, `--mode: "strict" is not audit or enforce`},
		{func(i *azure.Install) { i.ExtensionName = "" }, "--extension-name: must not be empty"},
	} {
		in := install()
		tc.edit(&in)
		got := ""
		if err := in.Validate(); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("Validate() = %q, want %q", got, tc.want)
		}
	}
}

func TestRedaction(t *testing.T) {
	if got := azure.RedactURL(pkgURL); got != "https://acct.blob.core.windows.net/pkg/drmfilter_1.0.0_amd64.deb?<redacted>" {
		t.Errorf("RedactURL = %q", got)
	}
	if got := azure.RedactURL(script); got != script {
		t.Errorf("RedactURL changed a URL without a query: %q", got)
	}
	text := "curl: (22) The requested URL returned error: 403 for '" + pkgURL + "'\nretrying " + polURL + " now"
	want := "curl: (22) The requested URL returned error: 403 for 'https://acct.blob.core.windows.net/pkg/drmfilter_1.0.0_amd64.deb?<redacted>'\nretrying https://acct.blob.core.windows.net/pol/finance.yaml?<redacted> now"
	if got := azure.RedactText(text); got != want {
		t.Errorf("RedactText:\n%s\nwant:\n%s", got, want)
	}
}

func TestForceUpdateTagChangesWithTheRun(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 22, 0, 0, 0, time.FixedZone("CET", 3600))
	if got := azure.ForceUpdateTag(sha, t0); got != "9f86d081884c-20261126T210000Z" {
		t.Errorf("tag = %q", got)
	}
	if azure.ForceUpdateTag(sha, t0) == azure.ForceUpdateTag(sha, t0.Add(time.Second)) {
		t.Error("two runs a second apart got the same tag")
	}
}

func TestResultTail(t *testing.T) {
	r := azure.Result{Result: azure.Failed, Message: "VMExtensionProvisioningError", Stderr: "line one\nline two\n"}
	if got := r.Tail(); got != "line two" {
		t.Errorf("failed tail = %q", got)
	}
	r = azure.Result{Result: azure.Succeeded, Message: "Enable succeeded", Stderr: "warning: something\n"}
	if got := r.Tail(); got != "Enable succeeded" {
		t.Errorf("succeeded tail = %q", got)
	}
	r = azure.Result{Result: azure.Failed, Message: strings.Repeat("x", 300) + "END"}
	if got := r.Tail(); len(got) > 110 || !strings.HasSuffix(got, "END") {
		t.Errorf("long tail = %q", got)
	}
}

func TestDefaultStatePath(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/cache")
	got, err := azure.DefaultStatePath(azure.Target{Subscription: "SUB-1", ResourceGroup: "Prod RG", Name: "web/1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("/cache", "drmfilter", "azure-vmss-sub-1_prod_rg_web_1.json"); got != want {
		t.Errorf("DefaultStatePath = %q, want %q", got, want)
	}
}
