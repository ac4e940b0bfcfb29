package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// LabelSelector selects pods by their labels, with the meaning Kubernetes
// gives metav1.LabelSelector: every matchLabels pair and every expression
// must hold.
//
// Hand-written rather than imported from k8s.io/apimachinery so that the node
// agent does not link the Kubernetes machinery for forty lines of logic.
type LabelSelector struct {
	MatchLabels      map[string]string
	MatchExpressions []LabelRequirement
	Pos              Pos
}

// LabelRequirement is one matchExpressions entry.
type LabelRequirement struct {
	Key      string
	Operator string // In, NotIn, Exists, DoesNotExist
	Values   []string
	Pos      Pos
}

// Matches reports whether labels satisfy the selector.
func (s *LabelSelector) Matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for i := range s.MatchExpressions {
		if !s.MatchExpressions[i].matches(labels) {
			return false
		}
	}
	return true
}

func (r *LabelRequirement) matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case "In":
		return ok && slices.Contains(r.Values, v)
	case "NotIn":
		return !ok || !slices.Contains(r.Values, v)
	case "Exists":
		return ok
	case "DoesNotExist":
		return !ok
	}
	return false
}

// contradiction names a pair of requirements that no set of labels can
// satisfy together, or returns "".
func (s *LabelSelector) contradiction() string {
	type want struct {
		present, absent bool
		in              []string // nil: no In constraint yet
		notIn           []string
	}
	keys := map[string]*want{}
	get := func(k string) *want {
		if keys[k] == nil {
			keys[k] = &want{}
		}
		return keys[k]
	}
	for k, v := range s.MatchLabels {
		w := get(k)
		w.present = true
		w.in = []string{v}
	}
	for _, r := range s.MatchExpressions {
		w := get(r.Key)
		switch r.Operator {
		case "In":
			w.present = true
			if w.in == nil {
				w.in = slices.Clone(r.Values)
			} else {
				w.in = slices.DeleteFunc(w.in, func(v string) bool { return !slices.Contains(r.Values, v) })
				if len(w.in) == 0 {
					return fmt.Sprintf("label %q cannot have a value in every In list", r.Key)
				}
			}
		case "NotIn":
			w.notIn = append(w.notIn, r.Values...)
		case "Exists":
			w.present = true
		case "DoesNotExist":
			w.absent = true
		}
	}
	for k, w := range keys {
		if w.present && w.absent {
			return fmt.Sprintf("label %q is required both to exist and not to exist", k)
		}
		if w.in != nil {
			left := slices.DeleteFunc(slices.Clone(w.in), func(v string) bool { return slices.Contains(w.notIn, v) })
			if len(left) == 0 {
				return fmt.Sprintf("every value allowed for label %q is also excluded", k)
			}
		}
	}
	return ""
}

// Label keys and values as Kubernetes validates them (qualified names and
// label values).
var (
	labelValueRE = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	labelNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	dnsPrefixRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

func checkLabelValue(v string) error {
	if len(v) > 63 || !labelValueRE.MatchString(v) {
		return fmt.Errorf("invalid value %q; at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", v)
	}
	return nil
}

func checkLabelKey(k string) error {
	name := k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if len(prefix) > 253 || !dnsPrefixRE.MatchString(prefix) {
			return fmt.Errorf("invalid label key %q: the prefix must be a DNS subdomain", k)
		}
	}
	if len(name) > 63 || !labelNameRE.MatchString(name) {
		return fmt.Errorf("invalid label key %q; the name part is at most 63 letters, digits, '-', '_' or '.'", k)
	}
	return nil
}

func (d *decoder) labelSelector(n *yaml.Node, field string) *LabelSelector {
	s := one(&d.a.labelSels)
	s.Pos = d.pos(n)
	f, ok := d.selector(n, field, "label selector; give", "matchLabels", "matchExpressions")
	if !ok {
		return s
	}
	if v := f.get("matchLabels"); v != nil {
		s.MatchLabels = d.stringMap(v, field+".matchLabels")
		if len(s.MatchLabels) == 0 && v.Kind == yaml.MappingNode {
			d.errorf(v, field+".matchLabels", "empty matchLabels; leave it out or give at least one label")
		}
		valid := true
		for k, val := range s.MatchLabels {
			if err := checkLabelKey(k); err != nil {
				d.errorf(v, field+".matchLabels", "%v", err)
				valid = false
			}
			if err := checkLabelValue(val); err != nil {
				d.errorf(v, field+".matchLabels."+k, "%v", err)
				valid = false
			}
		}
		if valid && len(s.MatchLabels) > 0 {
			s.MatchLabels = d.a.labelMap(s.MatchLabels)
		}
	}
	if v := f.get("matchExpressions"); v != nil {
		d.list(v, field+".matchExpressions", func(c *yaml.Node, ef string) {
			ff, ok := d.mapping(c, ef, "key", "operator", "values")
			if !ok {
				return
			}
			r := LabelRequirement{Pos: d.pos(c)}
			if kn := ff.get("key"); kn == nil {
				d.errorf(c, ef, "missing required field \"key\"")
			} else if k, ok := d.str(kn, ef+".key"); ok {
				if err := checkLabelKey(k); err != nil {
					d.errorf(kn, ef+".key", "%v", err)
				}
				r.Key = k
			}
			on := ff.get("operator")
			if on == nil {
				d.errorf(c, ef, "missing required field \"operator\" (In, NotIn, Exists, DoesNotExist)")
				return
			}
			op, ok := d.str(on, ef+".operator")
			if !ok {
				return
			}
			if err := oneOf([]string{"In", "NotIn", "Exists", "DoesNotExist"}, "operator")(op); err != nil {
				d.errorf(on, ef+".operator", "%v", err)
				return
			}
			r.Operator = op
			vn := ff.get("values")
			switch op {
			case "In", "NotIn":
				if vn == nil {
					d.errorf(c, ef, "operator %s needs a non-empty \"values\" list", op)
				} else {
					r.Values = d.strList(vn, ef+".values", checkLabelValue)
				}
			default:
				if vn != nil {
					d.errorf(vn, ef+".values", "operator %s takes no values", op)
				}
			}
			s.MatchExpressions = append(s.MatchExpressions, r)
		})
	}
	return s
}
