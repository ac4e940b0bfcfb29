package kubernetes

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/drmfilter/drmfilter/internal/policy"
)

// ErrPolicyFiles is matched by the errors about policy files that cannot be
// carried by the ConfigMap (two files with one base name, a name the agent
// would not read from its volume, too much data). Policy content errors are
// policy.ErrorList values, as `drmfilter policy check` prints them.
var ErrPolicyFiles = errors.New("policy files cannot be deployed")

// maxConfigMapData bounds the policies' total size: the API server refuses a
// ConfigMap whose data exceeds 1 MiB.
const maxConfigMapData = 1 << 20

// configMapKey is the form of a ConfigMap data key.
var configMapKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// Policies is a validated set of policy files as the ConfigMap carries it.
type Policies struct {
	// Set is the loaded set; Set.Hash is the ConfigMap's policy-hash
	// annotation.
	Set *policy.Set
	// Data maps each file's base name (a ConfigMap key) to its content.
	Data map[string]string
}

// ReadPolicies reads policy files and directories (policy.ReadPaths) and
// loads them with LoadPolicies.
func ReadPolicies(paths []string, opts policy.LoadOptions) (*Policies, error) {
	srcs, err := policy.ReadPaths(paths)
	if err != nil {
		return nil, err
	}
	return LoadPolicies(srcs, opts)
}

// LoadPolicies validates srcs the way the agent will load them from the
// ConfigMap: the files are ordered by base name, which is the order of the
// ConfigMap's keys and of its mounted volume's directory listing, so that
// the hash computed here is the hash each agent computes from the same keys.
// Policy errors are returned as they are (a policy.ErrorList); problems with
// the files themselves match ErrPolicyFiles.
func LoadPolicies(srcs []policy.Source, opts policy.LoadOptions) (*Policies, error) {
	sorted := slices.Clone(srcs)
	slices.SortStableFunc(sorted, func(a, b policy.Source) int {
		return strings.Compare(filepath.Base(a.Name), filepath.Base(b.Name))
	})
	data := make(map[string]string, len(sorted))
	from := make(map[string]string, len(sorted))
	total := 0
	for _, s := range sorted {
		key := filepath.Base(s.Name)
		if prev, ok := from[key]; ok {
			return nil, fmt.Errorf("%w: %s and %s have the same file name %q, and the ConfigMap has one key per file name; rename one of them", ErrPolicyFiles, prev, s.Name, key)
		}
		if !configMapKey.MatchString(key) || strings.HasPrefix(key, ".") ||
			!(strings.HasSuffix(key, ".yaml") || strings.HasSuffix(key, ".yml")) {
			return nil, fmt.Errorf("%w: %s: the agent reads only *.yaml and *.yml files whose names are letters, digits, '-', '_' and '.' and do not start with '.'; rename it", ErrPolicyFiles, s.Name)
		}
		if !utf8.Valid(s.Data) {
			return nil, fmt.Errorf("%w: %s is not UTF-8 text", ErrPolicyFiles, s.Name)
		}
		from[key] = s.Name
		data[key] = string(s.Data)
		total += len(key) + len(s.Data)
	}
	if total > maxConfigMapData {
		return nil, fmt.Errorf("%w: the policies take %d bytes and a ConfigMap holds at most %d", ErrPolicyFiles, total, maxConfigMapData)
	}
	set, err := policy.Load(sorted, opts)
	if err != nil {
		return nil, err
	}
	return &Policies{Set: set, Data: data}, nil
}
