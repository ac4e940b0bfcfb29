package policy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/drmfilter/drmfilter/internal/glob"
)

// The YAML library parses; this file walks its node tree by hand instead of
// decoding into structs, because struct decoding reports unknown fields and
// type mismatches by line only, stops at the first problem, and cannot say
// which field of which rule was wrong. Walking the nodes gives every error a
// line, a column and a field path, and collects all of them in one pass.

type decoder struct {
	file string
	errs ErrorList
	a    *setAlloc
}

func (d *decoder) pos(n *yaml.Node) Pos {
	return Pos{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	e := &Error{File: d.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		}
		return fmt.Sprintf("the string %q", n.Value)
	}
	return "something else"
}

// fields is a mapping node split into its values, after checking that every
// key is allowed and none is repeated.
type fields struct {
	allowed []string
	nodes   []*yaml.Node // the key nodes, then the values, in allowed's order
	given   int
}

func (f fields) get(k string) *yaml.Node {
	if i := slices.Index(f.allowed, k); i >= 0 && f.nodes != nil {
		return f.nodes[len(f.allowed)+i]
	}
	return nil
}

// mapping checks that n is a mapping whose keys are all in allowed.
func (d *decoder) mapping(n *yaml.Node, field string, allowed ...string) (fields, bool) {
	n = resolve(n)
	f := fields{allowed: allowed}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "expected a mapping with fields %s, got %s", strings.Join(allowed, ", "), kindName(n))
		return f, false
	}
	f.nodes = make([]*yaml.Node, 2*len(allowed))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		name := k.Value
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, field, "field names must be strings")
			continue
		}
		j := slices.Index(allowed, name)
		if j < 0 {
			msg := fmt.Sprintf("unknown field %q; expected one of %s", name, strings.Join(allowed, ", "))
			if s := suggest(name, allowed); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(k, field, "%s", msg)
			continue
		}
		if prev := f.nodes[j]; prev != nil {
			d.errorf(k, joinField(field, name), "field given twice (first at line %d)", prev.Line)
			continue
		}
		f.nodes[j], f.nodes[len(allowed)+j] = k, resolve(v)
		f.given++
	}
	return f, true
}

// selector is mapping for a selector, which must also name at least one
// of its fields; what starts the error message for an empty one.
func (d *decoder) selector(n *yaml.Node, field, what string, allowed ...string) (fields, bool) {
	f, ok := d.mapping(n, field, allowed...)
	if ok && f.given == 0 {
		d.errorf(resolve(n), field, "empty %s one of %s", what, strings.Join(allowed, ", "))
	}
	return f, ok
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// str decodes a non-empty string scalar.
func (d *decoder) str(n *yaml.Node, field string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, field, "expected a string, got %s", kindName(n))
		return "", false
	}
	if n.Value == "" {
		d.errorf(n, field, "must not be empty")
		return "", false
	}
	return d.a.str(n.Value), true
}

// list decodes a non-empty sequence, calling item for every element.
func (d *decoder) list(n *yaml.Node, field string, item func(n *yaml.Node, field string)) bool {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, field, "expected a list, got %s", kindName(n))
		return false
	}
	if len(n.Content) == 0 {
		d.errorf(n, field, "empty list; give at least one entry or leave the field out")
		return false
	}
	for i, c := range n.Content {
		item(resolve(c), fmt.Sprintf("%s[%d]", field, i))
	}
	return true
}

// strList decodes a non-empty list of strings, checking each with check
// (which may be nil) and rejecting duplicates, for the Set to keep.
func (d *decoder) strList(n *yaml.Node, field string, check func(s string) error) []string {
	return d.appendStrs(list(&d.a.strLists, listLen(n)), n, field, check)
}

// dupMapMin is the length from which appendStrs finds duplicates with a map.
const dupMapMin = 16

// appendStrs is strList appending to out: nil for a list only read while
// decoding.
func (d *decoder) appendStrs(out []string, n *yaml.Node, field string, check func(s string) error) []string {
	var lines []int         // of out's entries, for the duplicate error
	var seen map[string]int // index in out, once out is long
	d.list(n, field, func(c *yaml.Node, f string) {
		s, ok := d.str(c, f)
		if !ok {
			return
		}
		if check != nil {
			if err := check(s); err != nil {
				d.errorf(c, f, "%v", err)
				return
			}
		}
		// Most lists are short, and a search costs less than a map.
		i, dup := seen[s]
		if seen == nil {
			i = slices.Index(out, s)
			dup = i >= 0
		}
		if dup {
			d.errorf(c, f, "%q is listed twice (first at line %d)", s, lines[i])
			return
		}
		lines = append(lines, c.Line)
		out = append(out, s)
		if seen == nil && len(out) == dupMapMin {
			seen = make(map[string]int, 2*dupMapMin)
			for j, x := range out {
				seen[x] = j
			}
		} else if seen != nil {
			seen[s] = len(out) - 1
		}
	})
	return out
}

func (d *decoder) boolean(n *yaml.Node, field string) (bool, bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	d.errorf(n, field, "expected true or false, got %s", kindName(n))
	return false, false
}

func (d *decoder) stringMap(n *yaml.Node, field string) map[string]string {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "expected a mapping of strings, got %s", kindName(n))
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			d.errorf(k, joinField(field, k.Value), "expected a string value, got %s", kindName(v))
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.errorf(k, joinField(field, k.Value), "key given twice")
			continue
		}
		out[d.a.str(k.Value)] = d.a.str(v.Value)
	}
	return out
}

// listLen is the length of a list node, for sizing what is decoded from it.
func listLen(n *yaml.Node) int {
	if n = resolve(n); n.Kind == yaml.SequenceNode {
		return len(n.Content)
	}
	return 0
}

func oneOf(valid []string, what string) func(string) error {
	return func(s string) error {
		if slices.Contains(valid, s) {
			return nil
		}
		msg := fmt.Sprintf("unknown %s %q; expected one of %s", what, s, strings.Join(valid, ", "))
		if sg := suggest(s, valid); sg != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", sg)
		}
		return errors.New(msg)
	}
}

func checkGlob(s string) error {
	_, err := glob.Compile(s)
	return err
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDocuments decodes every document in data. Empty documents are
// skipped. A YAML syntax error stops the file (the parser cannot go on).
func parseDocuments(file string, data []byte, a *setAlloc) ([]*Policy, ErrorList) {
	d := &decoder{file: file, a: a}
	var out []*Policy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e := &Error{File: file, Msg: "YAML syntax: " + strings.TrimPrefix(err.Error(), "yaml: ")}
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				e.Msg = "YAML syntax: " + m[2]
				// The YAML library reports a parser error ("did not find
				// expected ...") at the 0-based line where the enclosing
				// mapping or list starts, while scanner errors carry the
				// 1-based line of the fault itself. Report both 1-based.
				if strings.HasPrefix(m[2], "did not find expected") {
					e.Line++
					e.Msg += " (in the mapping or list that starts on this line)"
				}
			}
			d.errs = append(d.errs, e)
			break
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
			continue
		}
		root := resolve(doc.Content[0])
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		if p := d.policy(root); p != nil {
			out = append(out, p)
		}
	}
	return out, d.errs
}

func (d *decoder) policy(n *yaml.Node) *Policy {
	f, ok := d.mapping(n, "", "apiVersion", "kind", "metadata", "spec")
	if !ok {
		return nil
	}
	p := one(&d.a.policies)
	p.Pos = d.pos(n)
	errsBefore := len(d.errs)
	for _, k := range []string{"apiVersion", "kind", "metadata", "spec"} {
		if f.get(k) == nil {
			d.errorf(n, "", "missing required field %q", k)
		}
	}
	if v := f.get("apiVersion"); v != nil {
		if s, ok := d.str(v, "apiVersion"); ok && s != APIVersion {
			d.errorf(v, "apiVersion", "unsupported apiVersion %q; this drmfilter reads %s", s, APIVersion)
			return nil
		}
	}
	if v := f.get("kind"); v != nil {
		if s, ok := d.str(v, "kind"); ok && s != Kind {
			d.errorf(v, "kind", "unsupported kind %q; expected %s", s, Kind)
			return nil
		}
	}
	if v := f.get("metadata"); v != nil {
		d.metadata(v, p)
	}
	if v := f.get("spec"); v != nil {
		d.spec(v, p)
	}
	if len(d.errs) > errsBefore {
		return nil
	}
	return p
}

// nameRE is a Kubernetes DNS subdomain name, which also makes policy names
// safe in ConfigMap keys, metrics and audit records.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

func (d *decoder) metadata(n *yaml.Node, p *Policy) {
	f, ok := d.mapping(n, "metadata", "name", "labels", "annotations")
	if !ok {
		return
	}
	if v := f.get("name"); v == nil {
		d.errorf(n, "metadata", "missing required field \"name\"")
	} else if s, ok := d.str(v, "metadata.name"); ok {
		if len(s) > 253 || !nameRE.MatchString(s) {
			d.errorf(v, "metadata.name", "invalid name %q; use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (at most 253)", s)
		}
		p.Name, p.NamePos = s, d.pos(v)
	}
	if v := f.get("labels"); v != nil {
		p.Labels = d.stringMap(v, "metadata.labels")
	}
	if v := f.get("annotations"); v != nil {
		p.Annotations = d.stringMap(v, "metadata.annotations")
	}
}

func (d *decoder) spec(n *yaml.Node, p *Policy) {
	f, ok := d.mapping(n, "spec", "mode", "files", "rules")
	if !ok {
		return
	}
	if v := f.get("mode"); v != nil {
		if s, ok := d.str(v, "spec.mode"); ok {
			m, err := ParseMode(s)
			if err != nil {
				d.errorf(v, "spec.mode", "%v", err)
			}
			p.Spec.Mode = m
		}
	}
	if v := f.get("files"); v == nil {
		d.errorf(n, "spec", "missing required field \"files\": say which files the policy protects")
	} else {
		d.files(v, &p.Spec.Files)
	}
	if v := f.get("rules"); v == nil {
		d.errorf(n, "spec", "missing required field \"rules\": a policy needs at least one rule")
	} else {
		p.Spec.Rules = list(&d.a.rules, listLen(v))
		d.list(v, "spec.rules", func(c *yaml.Node, field string) {
			if r, ok := d.rule(c, field); ok {
				p.Spec.Rules = append(p.Spec.Rules, r)
			}
		})
	}
}

func (d *decoder) files(n *yaml.Node, fs *FileSelector) {
	const field = "spec.files"
	f, ok := d.mapping(n, field, "paths", "containerPaths", "extensions", "filesystems", "storageClasses", "excludePaths")
	if !ok {
		return
	}
	fs.Pos = d.pos(resolve(n))
	if v := f.get("paths"); v != nil {
		fs.Paths = d.strList(v, field+".paths", checkGlob)
	}
	if v := f.get("containerPaths"); v != nil {
		fs.ContainerPaths = d.strList(v, field+".containerPaths", checkGlob)
	}
	if v := f.get("extensions"); v != nil {
		fs.Extensions = d.strList(v, field+".extensions", checkExtension)
		for i, e := range fs.Extensions {
			fs.Extensions[i] = d.a.str(normalizeExt(e))
		}
	}
	if v := f.get("filesystems"); v != nil {
		fs.Filesystems = d.strList(v, field+".filesystems", checkFSType)
	}
	if v := f.get("storageClasses"); v != nil {
		fs.StorageClasses = d.strList(v, field+".storageClasses", oneOf(storageClasses, "storage class"))
	}
	if v := f.get("excludePaths"); v != nil {
		fs.ExcludePaths = d.strList(v, field+".excludePaths", checkGlob)
	}
	if f.get("paths") == nil && f.get("containerPaths") == nil && f.get("extensions") == nil && f.get("filesystems") == nil && f.get("storageClasses") == nil {
		d.errorf(resolve(n), field, "empty file selector; give at least one of paths, containerPaths, extensions, filesystems, storageClasses")
	}
}

func checkExtension(s string) error {
	e := normalizeExt(s)
	if e == "" || strings.ContainsAny(e, "/*?[") || strings.HasSuffix(e, ".") {
		return fmt.Errorf("invalid extension %q; write it like .pdf or pdf (or .tar.gz)", s)
	}
	if len(e) > maxExtLen {
		return fmt.Errorf("extension %q is longer than %d characters", s, maxExtLen)
	}
	return nil
}

// maxExtLen bounds extensions so that the decision path can lower-case a
// file's extension in a fixed buffer.
const maxExtLen = 32

func normalizeExt(s string) string { return strings.ToLower(strings.TrimPrefix(s, ".")) }

var fsTypeRE = regexp.MustCompile(`^[a-z0-9_]+(\.[A-Za-z0-9_.-]+)?$`)

func checkFSType(s string) error {
	if !fsTypeRE.MatchString(s) {
		return fmt.Errorf("invalid filesystem type %q; write it as /proc/mounts does, for example ext4, nfs4, fuse.sshfs", s)
	}
	return nil
}

func (d *decoder) rule(n *yaml.Node, field string) (Rule, bool) {
	r := Rule{Pos: d.pos(n)}
	before := len(d.errs)
	f, ok := d.mapping(n, field, "name", "operations", "subjects", "effect")
	if !ok {
		return r, false
	}
	if v := f.get("name"); v == nil {
		d.errorf(n, field, "missing required field \"name\"")
	} else if s, ok := d.str(v, field+".name"); ok {
		if !nameRE.MatchString(s) || len(s) > 63 {
			d.errorf(v, field+".name", "invalid rule name %q; use lower-case letters, digits and '-' (at most 63)", s)
		}
		r.Name = s
	}
	if v := f.get("operations"); v == nil {
		d.errorf(n, field, "missing required field \"operations\" (%s)", strings.Join(OperationNames(), ", "))
	} else {
		for _, s := range d.appendStrs(nil, v, field+".operations", func(s string) error { _, err := ParseOperation(s); return err }) {
			op, _ := ParseOperation(s)
			r.Operations |= op
		}
		d.opPositions(v, r.Pos)
	}
	if v := f.get("effect"); v == nil {
		d.errorf(n, field, "missing required field \"effect\" (allow, deny or audit)")
	} else if s, ok := d.str(v, field+".effect"); ok {
		e, err := ParseEffect(s)
		if err != nil {
			d.errorf(v, field+".effect", "%v", err)
		}
		r.Effect = e
	}
	if v := f.get("subjects"); v != nil {
		r.Subjects = d.subjects(v, field+".subjects")
	}
	return r, len(d.errs) == before
}

// opPositions keeps where the operations list n of the rule at rule names
// an operation that some backend does not mediate (see portableOps).
func (d *decoder) opPositions(n *yaml.Node, rule Pos) {
	if n = resolve(n); n.Kind != yaml.SequenceNode {
		return
	}
	for i, c := range n.Content {
		c = resolve(c)
		if op, err := ParseOperation(c.Value); err == nil && c.Kind == yaml.ScalarNode && op&^portableOps != 0 {
			d.a.opPos = append(d.a.opPos, opPos{rule: rule, op: op, index: i, at: d.pos(c)})
		}
	}
}

func (d *decoder) subjects(n *yaml.Node, field string) *Subjects {
	f, ok := d.mapping(n, field, "executables", "executableHashes", "scripts", "users", "groups", "container", "kubernetes", "environment")
	if !ok {
		return nil
	}
	s := one(&d.a.subjects)
	s.Pos = d.pos(n)
	if f.given == 0 {
		d.errorf(n, field, "empty subjects; leave \"subjects\" out to select every program, or give executables, executableHashes, scripts, users, groups, container, kubernetes or environment")
		return s
	}
	if v := f.get("executables"); v != nil {
		s.Executables = d.strList(v, field+".executables", checkGlob)
	}
	if v := f.get("executableHashes"); v != nil {
		for _, h := range d.appendStrs(nil, v, field+".executableHashes", checkHash) {
			sum, _ := parseHash(h)
			s.ExecutableHashes = append(s.ExecutableHashes, sum)
		}
	}
	if v := f.get("scripts"); v != nil {
		s.Scripts = d.strList(v, field+".scripts", checkScript)
	}
	if v := f.get("users"); v != nil {
		s.Users = d.idRefs(v, field+".users")
	}
	if v := f.get("groups"); v != nil {
		s.Groups = d.idRefs(v, field+".groups")
	}
	if v := f.get("container"); v != nil {
		s.Container = d.container(v, field+".container")
	}
	if v := f.get("kubernetes"); v != nil {
		s.Kubernetes = d.kubernetes(v, field+".kubernetes")
	}
	if v := f.get("environment"); v != nil {
		s.Environment = d.environment(v, field+".environment")
	}
	return s
}

// checkScript accepts an absolute, clean path: a script is a file the
// kernel finds by identity, so there are no globs.
func checkScript(s string) error {
	if !strings.HasPrefix(s, "/") || path.Clean(s) != s {
		return fmt.Errorf("script %q is not an absolute, clean path", s)
	}
	if strings.ContainsAny(s, "*?[") {
		return fmt.Errorf("script %q: scripts are paths, not globs", s)
	}
	return nil
}

func checkHash(s string) error {
	_, err := parseHash(s)
	return err
}

func parseHash(s string) ([32]byte, error) {
	var sum [32]byte
	h := strings.TrimPrefix(s, "sha256:")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return sum, fmt.Errorf("invalid executable hash %q; expected sha256: followed by 64 hex digits", s)
	}
	copy(sum[:], b)
	return sum, nil
}

func (d *decoder) idRefs(n *yaml.Node, field string) []IDRef {
	out := list(&d.a.idRefs, listLen(n))
	seen := map[string]bool{}
	d.list(n, field, func(c *yaml.Node, f string) {
		if c.Kind != yaml.ScalarNode || c.Tag == "!!null" || c.Value == "" {
			d.errorf(c, f, "expected a name or a numeric id, got %s", kindName(c))
			return
		}
		if seen[c.Value] {
			d.errorf(c, f, "%q is listed twice", c.Value)
			return
		}
		seen[c.Value] = true
		out = append(out, IDRef{Name: d.a.str(c.Value), Pos: d.pos(c)})
	})
	return out
}

// Container runtimes a selector may name; the environment detector reports
// the same names.
var containerRuntimes = []string{"docker", "podman", "containerd", "cri-o", "lxc", "systemd-nspawn", "wsl"}

var containerIDRE = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

func (d *decoder) container(n *yaml.Node, field string) *ContainerSelector {
	c := one(&d.a.containers)
	c.Pos = d.pos(n)
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "any":
			c.Scope = ContainerAnyScope
		case "none":
			c.Scope = ContainerNoneScope
		default:
			d.errorf(n, field, "expected any, none, or a mapping with runtimes and/or ids; got %s", kindName(n))
		}
		return c
	}
	f, ok := d.selector(n, field, "container selector; write container: any, container: none, or give", "runtimes", "ids", "images")
	if !ok {
		return c
	}
	if v := f.get("images"); v != nil {
		c.Images = d.strList(v, field+".images", checkImage)
	}
	if v := f.get("runtimes"); v != nil {
		c.Runtimes = d.strList(v, field+".runtimes", oneOf(containerRuntimes, "container runtime"))
	}
	if v := f.get("ids"); v != nil {
		c.IDs = d.strList(v, field+".ids", func(s string) error {
			if !containerIDRE.MatchString(s) {
				return fmt.Errorf("invalid container id %q; expected 12 to 64 lower-case hex digits", s)
			}
			return nil
		})
	}
	return c
}

var imageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$`)

func checkImage(s string) error {
	if !imageRE.MatchString(s) || len(s) > 512 {
		return fmt.Errorf("invalid image %q; write a reference such as nginx, docker.io/library/nginx:1.27 or a digest sha256:<64 hex>", s)
	}
	return nil
}

func (d *decoder) kubernetes(n *yaml.Node, field string) *KubernetesSelector {
	k := one(&d.a.kubes)
	k.Pos = d.pos(n)
	f, ok := d.selector(n, field, "kubernetes selector; give", "namespaces", "podLabels")
	if !ok {
		return k
	}
	if v := f.get("namespaces"); v != nil {
		k.Namespaces = d.strList(v, field+".namespaces", checkLabelValue)
	}
	if v := f.get("podLabels"); v != nil {
		k.PodLabels = d.labelSelector(v, field+".podLabels")
	}
	return k
}

// Hypervisor names, as systemd-detect-virt prints them, plus firecracker
// and cloud-hypervisor which drmfilter can tell apart.
// They are listed here rather than taken from internal/environ so that the
// policy package stays a leaf; a test there checks the two lists agree.
var hypervisors = []string{"kvm", "amazon", "qemu", "bochs", "xen", "uml", "vmware", "oracle", "microsoft", "zvm", "parallels", "bhyve", "qnx", "acrn", "powervm", "apple", "sre", "google", "vm-other", "firecracker", "cloud-hypervisor"}

// Cloud ids, as internal/environ reports them.
var clouds = []string{"azure", "aws", "gcp", "oracle", "alibaba", "digitalocean", "hetzner", "openstack", "ibm", "exoscale", "scaleway",
	"akamai", "bigstep", "cloudcix", "cloudsigma", "cloudstack", "joyent", "lxd", "nwcs", "rbxcloud", "upcloud", "vultr",
	"brightbox", "e24cloud", "outscale", "tilaa", "zstack"}

// KnownHypervisors returns the hypervisor ids an environment selector accepts.
func KnownHypervisors() []string { return slices.Clone(hypervisors) }

// KnownClouds returns the cloud ids an environment selector accepts.
func KnownClouds() []string { return slices.Clone(clouds) }

var machines = []string{"physical", "virtual"}

func (d *decoder) environment(n *yaml.Node, field string) *EnvironmentSelector {
	e := one(&d.a.envs)
	e.Pos = d.pos(n)
	f, ok := d.selector(n, field, "environment selector; give", "machines", "hypervisors", "clouds", "inContainer")
	if !ok {
		return e
	}
	if v := f.get("machines"); v != nil {
		e.Machines = d.strList(v, field+".machines", oneOf(machines, "machine kind"))
	}
	if v := f.get("hypervisors"); v != nil {
		e.Hypervisors = d.strList(v, field+".hypervisors", oneOf(hypervisors, "hypervisor"))
	}
	if v := f.get("clouds"); v != nil {
		e.Clouds = d.strList(v, field+".clouds", oneOf(clouds, "cloud"))
	}
	if v := f.get("inContainer"); v != nil {
		if b, ok := d.boolean(v, field+".inContainer"); ok {
			e.InContainer = &b
		}
	}
	return e
}

// suggest returns the candidate closest to s if it is close enough to be a
// likely typo.
func suggest(s string, candidates []string) string {
	if len(s) > 64 {
		return ""
	}
	best, bestD := "", 3
	for _, c := range candidates {
		if dd := editDistance(strings.ToLower(s), strings.ToLower(c)); dd < bestD {
			best, bestD = c, dd
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
