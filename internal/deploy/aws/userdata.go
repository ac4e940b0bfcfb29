package aws

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"iter"
	"mime"
	"mime/multipart"
	"net/textproto"
	"regexp"
	"strings"
)

// The install step in user data sits between these two lines, so that a
// later deploy replaces it instead of adding a second one.
const (
	beginMarker = "# >>> drmfilter install (added by drmfilter deploy aws asg) >>>"
	endMarker   = "# <<< drmfilter install <<<"
)

// maxUserData is EC2's limit on user data before base64 encoding.
const maxUserData = 16 * 1024

// UserData formats AddInstallStep recognises.
const (
	FormatEmpty     = "empty"
	FormatShell     = "shell script"
	FormatMultipart = "MIME multipart"
	FormatReplaced  = "earlier drmfilter install step"
)

// cloudInitTypes maps the first line of a cloud-init user data document to
// its MIME type (cloud-init's "user data formats"). Longer prefixes first.
var cloudInitTypes = []struct{ prefix, mimeType string }{
	{"#cloud-config-archive", "text/cloud-config-archive"},
	{"#cloud-config", "text/cloud-config"},
	{"#cloud-boothook", "text/cloud-boothook"},
	{"#include", "text/x-include-url"},
	{"#part-handler", "text/part-handler"},
}

var shellInterpreter = regexp.MustCompile(`^#!\s*(/usr)?/bin/(env\s+)?(ba|da|k|z)?sh\b`)

// installBlock is the install step as a self-contained shell fragment: a
// subshell, so that its `set -eu` and trap do not leak into a script it is
// appended to.
func installBlock(spec InstallSpec) string {
	var b strings.Builder
	b.WriteString(beginMarker + "\n(\n")
	for _, c := range spec.Commands() {
		b.WriteString("  " + c + "\n")
	}
	b.WriteString(")\n" + endMarker + "\n")
	return b.String()
}

// AddInstallStep returns prev, a launch template's user data (decoded from
// base64), with the install step added, and says what prev was:
//
//   - empty: a new bash script that only installs.
//   - already holding a drmfilter install step (any format): that step is
//     replaced in place.
//   - a shell script (#! naming sh, bash, dash, ksh or zsh): the step is
//     appended at the end, in a subshell. A script that exits before its
//     end never reaches it; warnings say when a line starts with `exit`.
//   - MIME multipart (cloud-init's multi-part archive): a text/x-shellscript
//     part is added before the closing boundary; the other parts keep their
//     bytes.
//   - any other cloud-init document (#cloud-config, #include,
//     #cloud-boothook, #part-handler, a script in another language): it
//     becomes the first part of a new MIME multipart document and the
//     install script the second, which cloud-init runs after it.
//
// gzip-compressed and unrecognised user data are refused rather than
// guessed at.
func AddInstallStep(prev []byte, spec InstallSpec) (next []byte, format string, warnings []string, err error) {
	block := installBlock(spec)
	text := string(prev)
	if i := strings.Index(text, beginMarker); i >= 0 {
		j := strings.Index(text[i:], endMarker)
		if j < 0 {
			return nil, "", nil, errors.New("user data has the start of a drmfilter install step but not its end line; fix it by hand")
		}
		end := i + j + len(endMarker)
		if end < len(text) && text[end] == '\n' {
			end++
		}
		next = []byte(text[:i] + block + text[end:])
		return checkSize(next, FormatReplaced, nil)
	}
	trimmed := strings.TrimLeft(text, " \t\r\n")
	switch {
	case trimmed == "":
		return checkSize([]byte("#!/bin/bash\n"+block), FormatEmpty, nil)
	case bytes.HasPrefix(prev, []byte{0x1f, 0x8b}):
		return nil, "", nil, errors.New("user data is gzip-compressed; decompress it into the launch template, or add the install step by hand")
	case shellInterpreter.MatchString(firstLine(text)):
		if exitLine.MatchString(text) {
			warnings = append(warnings, "the user data script has a line starting with `exit`: the install step appended at its end does not run if the script exits there")
		}
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		return checkSize([]byte(text+block), FormatShell, warnings)
	case isMultipart(text):
		next, err := addPart(text, block)
		if err != nil {
			return nil, "", nil, err
		}
		return checkSize(next, FormatMultipart, nil)
	}
	mimeType := ""
	if strings.HasPrefix(trimmed, "#!") {
		mimeType = "text/x-shellscript"
	}
	for _, t := range cloudInitTypes {
		if strings.HasPrefix(trimmed, t.prefix) {
			mimeType = t.mimeType
			break
		}
	}
	if mimeType == "" {
		return nil, "", nil, fmt.Errorf("user data starting %q is not a script, a cloud-init document or MIME multipart; add the install step by hand", clip(firstLine(trimmed), 40))
	}
	next, err = wrap(prev, mimeType, block)
	if err != nil {
		return nil, "", nil, err
	}
	return checkSize(next, mimeType+" (wrapped in MIME multipart)", nil)
}

var exitLine = regexp.MustCompile(`(?m)^\s*exit\b`)

func checkSize(b []byte, format string, warnings []string) ([]byte, string, []string, error) {
	if len(b) > maxUserData {
		return nil, "", nil, fmt.Errorf("user data with the install step is %d bytes, more than EC2's limit of %d", len(b), maxUserData)
	}
	return b, format, warnings, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimRight(line, "\r")
}

// isMultipart reports whether text starts with MIME headers whose
// Content-Type is multipart/*.
func isMultipart(text string) bool {
	boundary, err := multipartBoundary(text)
	return err == nil && boundary != ""
}

// multipartBoundary reads the document's MIME headers and returns the
// boundary of its multipart Content-Type.
func multipartBoundary(text string) (string, error) {
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(text)))
	h, err := r.ReadMIMEHeader()
	if err != nil {
		return "", fmt.Errorf("read MIME headers: %w", err)
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") {
		return "", errors.New("content type is not multipart")
	}
	return params["boundary"], nil
}

// addPart inserts a text/x-shellscript part holding script before the
// closing boundary of the multipart document text, using its line endings.
func addPart(text, script string) ([]byte, error) {
	boundary, err := multipartBoundary(text)
	if err != nil {
		return nil, err
	}
	closing := "--" + boundary + "--"
	i := strings.LastIndex(text, closing)
	if i < 0 {
		return nil, fmt.Errorf("MIME multipart user data has no closing boundary %q", closing)
	}
	nl := "\n"
	if strings.Contains(text, "\r\n") {
		nl = "\r\n"
	}
	part := "--" + boundary + nl +
		`Content-Type: text/x-shellscript; charset="us-ascii"` + nl +
		"MIME-Version: 1.0" + nl +
		"Content-Transfer-Encoding: 7bit" + nl +
		`Content-Disposition: attachment; filename="drmfilter-install.sh"` + nl + nl +
		strings.ReplaceAll("#!/bin/bash\n"+script, "\n", nl) + nl
	return []byte(text[:i] + part + text[i:]), nil
}

// wrap makes a two-part MIME multipart document: prev as mimeType, then the
// install script.
func wrap(prev []byte, mimeType, script string) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	parts := []struct {
		mimeType, charset, encoding, filename string
		content                               []byte
	}{
		// The user's document may hold any UTF-8; ours is ASCII.
		{mimeType, "utf-8", "8bit", "user-data", prev},
		{"text/x-shellscript", "us-ascii", "7bit", "drmfilter-install.sh", []byte("#!/bin/bash\n" + script)},
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", fmt.Sprintf("%s; charset=%q", p.mimeType, p.charset))
		h.Set("MIME-Version", "1.0")
		h.Set("Content-Transfer-Encoding", p.encoding)
		h.Set("Content-Disposition", `attachment; filename="`+p.filename+`"`)
		w, err := mw.CreatePart(h)
		if err != nil {
			return nil, fmt.Errorf("write user data part: %w", err)
		}
		if _, err := w.Write(p.content); err != nil {
			return nil, fmt.Errorf("write user data part: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("write user data: %w", err)
	}
	head := fmt.Sprintf("Content-Type: multipart/mixed; boundary=%q\nMIME-Version: 1.0\n\n", mw.Boundary())
	return append([]byte(head), body.Bytes()...), nil
}

// splitLines yields the lines of s without its final newline.
func splitLines(s string) iter.Seq[string] {
	return strings.SplitSeq(strings.TrimSuffix(s, "\n"), "\n")
}
