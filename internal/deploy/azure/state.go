package azure

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// State is a scale set rollout's progress, saved after every batch so that
// --resume can skip the instances that already succeeded.
type State struct {
	// ScaleSetID is the scale set's resource ID.
	ScaleSetID string `json:"scaleSetId"`
	// PackageSHA256 is the package of the last run.
	PackageSHA256 string `json:"packageSha256"`
	// ExtensionName names the extension on the scale set.
	ExtensionName string `json:"extensionName"`
	// ForceUpdateTag is the tag the last run set on the extension profile.
	ForceUpdateTag string `json:"forceUpdateTag"`
	// CompletedBatches lists the batches that finished, across runs.
	CompletedBatches []BatchRecord `json:"completedBatches"`
	// Instances holds the last result of each instance, by instance ID.
	Instances map[string]InstanceRecord `json:"instances"`
}

// BatchRecord is one finished batch.
type BatchRecord struct {
	InstanceIDs []string  `json:"instanceIds"`
	Failures    int       `json:"failures"`
	FinishedAt  time.Time `json:"finishedAt"`
}

// InstanceRecord is the last result of one instance.
type InstanceRecord struct {
	Name          string    `json:"name"`
	Result        string    `json:"result"`
	Message       string    `json:"message,omitempty"`
	PackageSHA256 string    `json:"packageSha256"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// DefaultStatePath is where a scale set's state lives unless --state-file
// says otherwise: drmfilter/ under the user's cache directory.
func DefaultStatePath(t Target) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("state file: %w (pass --state-file)", err)
	}
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, strings.ToLower(t.Subscription+"_"+t.ResourceGroup+"_"+t.Name))
	return filepath.Join(dir, "drmfilter", "azure-vmss-"+name+".json"), nil
}

// LoadState reads a state file; a missing file is an error matching
// fs.ErrNotExist.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	if s.Instances == nil {
		s.Instances = map[string]InstanceRecord{}
	}
	return &s, nil
}

// Save writes the state atomically: a reader never sees half a file.
func (s *State) Save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".state-*.json")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// done reports whether the instance already has this package.
func (s *State) done(id, sha string) bool {
	r, ok := s.Instances[id]
	return ok && r.PackageSHA256 == sha && (r.Result == Succeeded || r.Result == SucceededBefore)
}
