// Package policy owns drmfilter's policy language and decision engine.
//
// A policy is a YAML document, Kubernetes-style:
//
//	apiVersion: drmfilter.dev/v1
//	kind: ProtectionPolicy
//	metadata: {name: finance-docs}
//	spec: {mode, files, rules}
//
// The life of a policy set is Load (parse, validate, resolve users and
// groups) -> Compile (an immutable *Matcher) -> Decide, called for every
// file operation the agent intercepts. The agent swaps Matchers atomically on
// reload; a Matcher is never modified after Compile.
//
// Files:
//   - types.go: the policy document as Go values (the schema).
//   - decode.go: strict YAML decoding with a file:line:column on every error.
//   - validate.go: checks that need the whole document or set.
//   - load.go: reading files and directories, all-or-nothing; a named
//     pipe, socket or device is refused, never read (ErrNotRegular).
//   - open_unix.go, open_other.go: the flags a policy file is opened with.
//   - errors.go: Error, ErrorList and the ErrInvalid and ErrUnsupported
//     sentinels.
//   - backend.go: Backend, the operations each enforcement backend
//     mediates, and Set.Unsupported, which names every rule a backend
//     cannot enforce.
//   - compile.go: Matcher construction.
//   - under.go: PathsUnder, which mount points can hold covered files.
//   - decide.go: Input, Decision and the hot path.
//   - hostexe.go: the per-path cache of the host file an executables rule
//     names (a process matches only if it runs that very file).
//   - explain.go: the slow path that records why, for `policy explain`.
//   - labels.go: Kubernetes-style label selectors.
//
// The package is pure Go: it makes no system calls except reading policy
// files and resolving user and group names; the host files of executables
// rules are looked up through the HostFiles the caller gives.
package policy
