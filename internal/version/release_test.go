package version

import "testing"

func TestInstallScriptURL(t *testing.T) {
	const notRelease = " is not a release, so install.sh has no tagged URL: pass --script-url"
	for v, want := range map[string]string{
		"v1.2.3":                             "https://raw.githubusercontent.com/drmfilter/drmfilter/v1.2.3/scripts/install.sh",
		"1.2.3":                              "https://raw.githubusercontent.com/drmfilter/drmfilter/v1.2.3/scripts/install.sh",
		"v1.3.0-rc.1":                        "https://raw.githubusercontent.com/drmfilter/drmfilter/v1.3.0-rc.1/scripts/install.sh",
		"devel":                              "this build (devel)" + notRelease,
		"":                                   "this build ()" + notRelease,
		"v0.0.0-20261126223100-0123456789ab": "this build (v0.0.0-20261126223100-0123456789ab)" + notRelease,
		"v1.4.1-0.20261126220000-0123456789ab+dirty": "this build (v1.4.1-0.20261126220000-0123456789ab+dirty)" + notRelease,
	} {
		got, err := InstallScriptURL(v)
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%q: %s, want %s", v, got, want)
		}
	}
}

func TestIsRelease(t *testing.T) {
	for v, want := range map[string]bool{
		"v1.2.3": true, "v1.3.0-rc.1": true, "1.2.3": false, "devel": false, "": false,
		"v0.0.0-20261126223100-0123456789ab": false, "v1.2.3+dirty": false,
	} {
		if got := IsRelease(v); got != want {
			t.Errorf("IsRelease(%q) = %v, want %v", v, got, want)
		}
	}
}
