package kubernetes

import (
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// Output formats of Encode.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
)

// CheckFormat reports whether f is a format Encode writes.
func CheckFormat(f string) error {
	if f != FormatYAML && f != FormatJSON {
		return fmt.Errorf("unknown output format %q (want yaml or json)", f)
	}
	return nil
}

// Encode writes objects (apply configurations, or API objects with their
// apiVersion and kind set) as a manifest that `kubectl apply -f -` accepts:
// YAML documents separated by "---", or one JSON List.
func Encode(w io.Writer, format string, objects []any) error {
	if err := CheckFormat(format); err != nil {
		return err
	}
	raws := make([]json.RawMessage, 0, len(objects))
	for _, o := range objects {
		b, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("encode %T: %w", o, err)
		}
		raws = append(raws, b)
	}
	if format == FormatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		list := struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Items      []json.RawMessage `json:"items"`
		}{"v1", "List", raws}
		if err := enc.Encode(list); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
		return nil
	}
	for i, raw := range raws {
		y, err := yaml.JSONToYAML(raw)
		if err != nil {
			return fmt.Errorf("encode manifest as YAML: %w", err)
		}
		if i > 0 {
			if _, err := io.WriteString(w, "---\n"); err != nil {
				return fmt.Errorf("write manifest: %w", err)
			}
		}
		if _, err := w.Write(y); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
	}
	return nil
}

// forPrinting returns a copy of an object read from the API server in the
// form a manifest shows: apiVersion and kind set (typed clients leave them
// empty) and without managedFields, which are the server's bookkeeping.
func forPrinting(obj runtime.Object) (runtime.Object, error) {
	obj = obj.DeepCopyObject()
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return nil, fmt.Errorf("kind of %T: %w", obj, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("metadata of %T: %w", obj, err)
	}
	m.SetManagedFields(nil)
	return obj, nil
}
