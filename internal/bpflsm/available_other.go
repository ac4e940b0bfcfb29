//go:build !linux

package bpflsm

// Availability says whether this kernel runs BPF LSM programs.
type Availability struct {
	OK     bool     `json:"available"`
	Reason string   `json:"reason"`
	Fix    string   `json:"fix,omitempty"`
	LSMs   []string `json:"lsms,omitempty"`
	BTF    bool     `json:"btf"`
}

// Probe reports that BPF LSM exists only on Linux.
func Probe() Availability { return Availability{Reason: "BPF LSM exists only on Linux"} }
