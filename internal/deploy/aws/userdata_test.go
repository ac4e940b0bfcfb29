package aws

import (
	"bytes"
	"compress/gzip"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

// parts parses a MIME multipart user data document as cloud-init does
// (Python's email parser is as lenient as net/mail about LF line ends) and
// returns each part's content type and body.
func parts(t *testing.T, doc []byte) [][2]string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("not a MIME document: %v\n%s", err, doc)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/mixed" {
		t.Fatalf("content type %q: %v", mediaType, err)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	var out [][2]string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("part %d: %v\n%s", len(out)+1, err, doc)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out = append(out, [2]string{ct, string(body)})
	}
}

func TestAddInstallStepToEachUserDataFormat(t *testing.T) {
	spec := testInstall()
	block := installBlock(spec)
	script := "#!/bin/bash\n" + block

	t.Run("empty", func(t *testing.T) {
		got, format, _, err := AddInstallStep(nil, spec)
		if err != nil || format != FormatEmpty || string(got) != script {
			t.Fatalf("%s %v:\n%s", format, err, got)
		}
	})
	t.Run("shell without final newline", func(t *testing.T) {
		got, format, warnings, err := AddInstallStep([]byte("#!/bin/sh\necho hi"), spec)
		if err != nil || format != FormatShell || string(got) != "#!/bin/sh\necho hi\n"+block || len(warnings) != 0 {
			t.Fatalf("%s %v %v:\n%s", format, err, warnings, got)
		}
	})
	t.Run("shell that exits early", func(t *testing.T) {
		_, _, warnings, err := AddInstallStep([]byte("#!/usr/bin/env bash\nif true; then\n  exit 0\nfi\n"), spec)
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "starting with `exit`") {
			t.Fatalf("%v %v", err, warnings)
		}
	})
	t.Run("second deploy replaces the step", func(t *testing.T) {
		first, _, _, err := AddInstallStep([]byte(oldScript), spec)
		if err != nil {
			t.Fatal(err)
		}
		newer := spec
		newer.SHA256 = strings.Repeat("f", 64)
		second, format, _, err := AddInstallStep(first, newer)
		if err != nil || format != FormatReplaced || string(second) != oldScript+installBlock(newer) {
			t.Fatalf("%s %v:\n%s", format, err, second)
		}
	})
	t.Run("MIME multipart gets a part", func(t *testing.T) {
		doc := "Content-Type: multipart/mixed; boundary=\"==B==\"\nMIME-Version: 1.0\n\n" +
			"--==B==\nContent-Type: text/cloud-config; charset=\"us-ascii\"\n\n#cloud-config\npackages: [nginx]\n\n" +
			"--==B==\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\n\n#!/bin/bash\necho mine\n\n--==B==--\n"
		got, format, _, err := AddInstallStep([]byte(doc), spec)
		if err != nil || format != FormatMultipart {
			t.Fatalf("%s %v", format, err)
		}
		ps := parts(t, got)
		if len(ps) != 3 || ps[0][0] != "text/cloud-config" || ps[1][1] != "#!/bin/bash\necho mine\n" || ps[2][0] != "text/x-shellscript" || ps[2][1] != script {
			t.Fatalf("parts: %q", ps)
		}
		if !strings.HasPrefix(string(got), doc[:strings.Index(doc, "--==B==--")]) {
			t.Error("the existing parts changed")
		}
	})
	t.Run("cloud-config is wrapped", func(t *testing.T) {
		cc := "#cloud-config\nruncmd:\n  - echo héllo\n"
		got, format, _, err := AddInstallStep([]byte(cc), spec)
		if err != nil || format != "text/cloud-config (wrapped in MIME multipart)" {
			t.Fatalf("%s %v", format, err)
		}
		ps := parts(t, got)
		if len(ps) != 2 || ps[0] != [2]string{"text/cloud-config", cc} || ps[1] != [2]string{"text/x-shellscript", script} {
			t.Fatalf("parts: %q", ps)
		}
		again, format, _, err := AddInstallStep(got, spec)
		if err != nil || format != FormatReplaced || !bytes.Equal(again, got) {
			t.Errorf("second deploy: %s %v", format, err)
		}
	})
	t.Run("python script is wrapped", func(t *testing.T) {
		got, _, _, err := AddInstallStep([]byte("#!/usr/bin/python3\nprint('hi')\n"), spec)
		if err != nil {
			t.Fatal(err)
		}
		if ps := parts(t, got); len(ps) != 2 || ps[0][0] != "text/x-shellscript" || ps[0][1] != "#!/usr/bin/python3\nprint('hi')\n" {
			t.Fatalf("parts: %q", ps)
		}
	})
}

func TestAddInstallStepRefuses(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(oldScript))
	_ = zw.Close()
	for name, tc := range map[string]struct{ in, want string }{
		"gzip":      {gz.String(), "user data is gzip-compressed"},
		"unknown":   {"hello world\n", `user data starting "hello world" is not a script, a cloud-init document or MIME multipart`},
		"half step": {oldScript + beginMarker + "\n", "user data has the start of a drmfilter install step but not its end line"},
		"too big":   {"#!/bin/sh\n" + strings.Repeat("# padding\n", 1700), "user data with the install step is"},
		"unclosed multipart": {"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n",
			`MIME multipart user data has no closing boundary "--B--"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, _, err := AddInstallStep([]byte(tc.in), testInstall())
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	in := "curl 'https://b.s3.amazonaws.com/p.deb?X-Amz-Signature=abc&X-Amz-Security-Token=tok' and https://example.com/x.yaml and http://h/a?b ftp://x/y?z"
	want := "curl 'https://b.s3.amazonaws.com/p.deb?<redacted>' and https://example.com/x.yaml and http://h/a?<redacted> ftp://x/y?<redacted>"
	if got := Redact(in); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestInstallSpecValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mod  func(*InstallSpec)
		want string
	}{
		"short sha": {func(s *InstallSpec) { s.SHA256 = "abc" }, `--sha256 "abc" is not 64 hexadecimal digits`},
		"no url":    {func(s *InstallSpec) { s.PackageURL = "" }, "--package-url is required"},
		"ftp":       {func(s *InstallSpec) { s.PackageURL = "ftp://h/p.deb?sig=1" }, `--package-url "ftp://h/p.deb?<redacted>" is not an http or https URL`},
		"mode":      {func(s *InstallSpec) { s.Mode = "block" }, `--mode "block" is not audit or enforce`},
	} {
		s := testInstall()
		tc.mod(&s)
		if err := s.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}
}
