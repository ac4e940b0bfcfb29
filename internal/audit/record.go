package audit

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Version is the schema version written in every record's "v" field.
const Version = 1

// Decisions.
const (
	DecisionDeny      = "deny"
	DecisionAudit     = "audit"
	DecisionWouldDeny = "would-deny"
	DecisionFailure   = "failure"
	// DecisionSign is a sign that the enforcement was got around where
	// the kernel could not refuse it (a boot without BPF LSM, a kernel
	// module loaded); Operation is OpTamper and Reason says which.
	DecisionSign = "sign"
	// DecisionDropped is written by the Writer itself, with Count set,
	// after it had to drop records.
	DecisionDropped = "dropped"
)

// Modes.
const (
	ModeEnforce = "enforce"
	ModeAudit   = "audit"
)

// Operations.
const (
	OpOpen = "open"
	OpExec = "exec"
	OpRead = "read"
	// OpTamper is an attempt on the agent itself that the kernel refused
	// (a signal, ptrace, its BPF objects or pins); Reason says which.
	OpTamper = "tamper"
)

// Failure reasons.
const (
	ReasonDeadline      = "deadline"
	ReasonInternalError = "internal-error"
	ReasonNoProcess     = "no-process"
	ReasonQueueOverflow = "queue-overflow"
	ReasonUnnamedFile   = "unnamed-file"
)

// UnknownID is the uid and gid of a record whose process could not be
// identified ((uid_t)-1, which no account has), so that it never reads as
// root's.
const UnknownID = ^uint32(0)

// Record is one audit record. The JSON tags are the schema (see the package
// comment): encoding/json decodes what AppendJSON writes back into an equal
// Record (times in UTC). AppendJSON is the encoder to use; encoding/json
// would write zero dev, ino, pid, uid and gid into a "dropped" record.
type Record struct {
	// V is the schema version; AppendJSON always writes Version.
	V int `json:"v"`
	// Time is when the decision was made; Writer.Write fills in the
	// current time when it is zero. Encoded in UTC.
	Time time.Time `json:"time"`
	// Decision is one of the Decision constants.
	Decision string `json:"decision"`
	// Mode is ModeEnforce or ModeAudit.
	Mode string `json:"mode,omitempty"`
	// Policy and Rule name what decided; empty for failures that
	// happened before a decision.
	Policy string `json:"policy,omitempty"`
	Rule   string `json:"rule,omitempty"`
	// Operation is OpOpen, OpExec or OpRead.
	Operation string `json:"operation,omitempty"`
	// Path is the file's path as the agent saw it.
	Path string `json:"path,omitempty"`
	// ContainerPath is the file's path as the process saw it from its
	// container, when that was needed to decide and differs from Path.
	ContainerPath string `json:"containerPath,omitempty"`
	// Dev and Ino identify the file (st_dev, st_ino).
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	// PID is the process that caused the event.
	PID int32 `json:"pid"`
	// Exe is the process's executable.
	Exe string `json:"exe,omitempty"`
	// UID and GID are the process's real uid and gid.
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// ContainerID and Runtime describe the process's container, if any.
	ContainerID string `json:"containerId,omitempty"`
	Runtime     string `json:"runtime,omitempty"`
	// Pod is the Kubernetes pod as "namespace/name", if known.
	Pod string `json:"pod,omitempty"`
	// Env is the caller's compact environment tag ("kvm/aws/docker").
	Env string `json:"env,omitempty"`
	// Reason says why a failure record was written (Reason constants),
	// or, for a decision, what the agent did not know when it decided
	// ("pod metadata pending").
	Reason string `json:"reason,omitempty"`
	// Verdict is, on failure records, what the kernel was told: "allow"
	// (let through without a decision) or "deny".
	Verdict string `json:"verdict,omitempty"`
	// PathBytes, ExeBytes and ContainerPathBytes hold the exact bytes of
	// a name that is not valid UTF-8 (a Linux name is any bytes but NUL
	// and '/'): the JSON string of the name then has U+FFFD in place of
	// each invalid byte, so two different names could read alike; these
	// fields (base64 in JSON) tell them apart. Empty for valid names.
	PathBytes          []byte `json:"pathBytes,omitempty"`
	ExeBytes           []byte `json:"exeBytes,omitempty"`
	ContainerPathBytes []byte `json:"containerPathBytes,omitempty"`
	// Count is set on DecisionDropped records (how many records were
	// dropped since the previous such record) and DecisionSuppressed ones
	// (how many records of UID went over its share of the window).
	Count uint64 `json:"count,omitempty"`
	// Repeated is set on the summary of a record that recurred within the
	// limiter's window: how many identical records were counted instead
	// of written since the one written first.
	Repeated uint64 `json:"repeated,omitempty"`
}

// AppendJSON appends r as one JSON object followed by a newline, without
// reflection and without allocating when dst has room. A DecisionDropped
// record carries only v, time, decision and count.
func AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, Version, 10)
	dst = append(dst, `,"time":"`...)
	dst = r.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = appendField(dst, "decision", r.Decision)
	switch r.Decision {
	case DecisionDropped:
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendUint(dst, r.Count, 10)
		return append(dst, "}\n"...)
	case DecisionSuppressed:
		dst = append(dst, `,"uid":`...)
		dst = strconv.AppendUint(dst, uint64(r.UID), 10)
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendUint(dst, r.Count, 10)
		return append(dst, "}\n"...)
	}
	dst = appendOpt(dst, "mode", r.Mode)
	dst = appendOpt(dst, "policy", r.Policy)
	dst = appendOpt(dst, "rule", r.Rule)
	dst = appendOpt(dst, "operation", r.Operation)
	dst = appendOpt(dst, "path", r.Path)
	dst = appendRaw(dst, "pathBytes", r.Path)
	dst = appendOpt(dst, "containerPath", r.ContainerPath)
	dst = appendRaw(dst, "containerPathBytes", r.ContainerPath)
	dst = append(dst, `,"dev":`...)
	dst = strconv.AppendUint(dst, r.Dev, 10)
	dst = append(dst, `,"ino":`...)
	dst = strconv.AppendUint(dst, r.Ino, 10)
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, int64(r.PID), 10)
	dst = appendOpt(dst, "exe", r.Exe)
	dst = appendRaw(dst, "exeBytes", r.Exe)
	dst = append(dst, `,"uid":`...)
	dst = strconv.AppendUint(dst, uint64(r.UID), 10)
	dst = append(dst, `,"gid":`...)
	dst = strconv.AppendUint(dst, uint64(r.GID), 10)
	dst = appendOpt(dst, "containerId", r.ContainerID)
	dst = appendOpt(dst, "runtime", r.Runtime)
	dst = appendOpt(dst, "pod", r.Pod)
	dst = appendOpt(dst, "env", r.Env)
	dst = appendOpt(dst, "reason", r.Reason)
	dst = appendOpt(dst, "verdict", r.Verdict)
	if r.Count != 0 {
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendUint(dst, r.Count, 10)
	}
	if r.Repeated != 0 {
		dst = append(dst, `,"repeated":`...)
		dst = strconv.AppendUint(dst, r.Repeated, 10)
	}
	return append(dst, "}\n"...)
}

// appendRaw writes, for a name that is not valid UTF-8, its exact bytes in
// base64 under name (see Record.PathBytes), without allocating.
func appendRaw(dst []byte, name, v string) []byte {
	if utf8.ValidString(v) {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':', '"')
	dst = base64.StdEncoding.AppendEncode(dst, unsafe.Slice(unsafe.StringData(v), len(v)))
	return append(dst, '"')
}

func appendOpt(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	return appendField(dst, name, v)
}

func appendField(dst []byte, name, v string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendString(dst, v)
}

const hexDigits = "0123456789abcdef"

// safeASCII marks the ASCII bytes written as they are in a JSON string.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string, escaping as encoding/json does
// (HTML-safe escapes included, so a log viewer cannot be fooled) and
// replacing invalid UTF-8 bytes with U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
