// Package audit owns drmfilter's audit log: the versioned record of every
// deny, audit, would-deny and failure decision the agent makes, and the
// sinks it is written to (a JSON-lines file with size-based rotation, or a
// stream such as stdout). The audit log is product output, kept apart from
// the agent's diagnostic log; nothing in this package logs.
//
// # Schema (version 1)
//
// One JSON object per line. Field names are stable; a field is added only
// with a new meaning, and an incompatible change raises "v".
//
//	field        type    presence   meaning
//	v            number  always     schema version, 1
//	time         string  always     when the decision was made, RFC 3339 with
//	                                nanoseconds, UTC ("2026-11-26T20:53:33.123456789Z")
//	decision     string  always     "deny", "audit", "would-deny", "failure", or
//	                                "dropped" (see below)
//	mode         string  decisions  "enforce" or "audit" (the mode of the deciding policy,
//	                                or the agent's global mode for failures)
//	policy       string  optional   name of the deciding policy
//	rule         string  optional   name of the deciding rule
//	operation    string  decisions  "open", "exec" or "read"
//	path         string  decisions  path of the file as the agent saw it
//	containerPath string optional   path of the file as the process saw it from
//	                                its container, when it differs
//	dev          number  decisions  device of the file (st_dev)
//	ino          number  decisions  inode of the file (st_ino)
//	pid          number  decisions  process that caused the event
//	exe          string  decisions  its executable (/proc/PID/exe)
//	uid          number  decisions  its real uid
//	gid          number  decisions  its real gid
//	containerId  string  optional   container id, when the process runs in one
//	runtime      string  optional   container runtime (docker, containerd, ...)
//	pod          string  optional   Kubernetes pod as "namespace/name"
//	env          string  decisions  compact environment tag such as "kvm/aws/docker"
//	reason       string  optional   for failures: "deadline", "internal-error", ...;
//	                                for decisions: what was not known ("pod
//	                                metadata pending")
//	count        number  dropped    number of records dropped before this one
//
// "decisions" means every record except "dropped", which carries only v,
// time, decision and count: when the writer had to drop records (its queue
// was full), it writes such a record as soon as it can, so the log itself
// says that records are missing and how many. Optional string fields are
// left out when empty. Strings that are not valid UTF-8 (a path may be any
// bytes) have each invalid byte replaced by U+FFFD, as encoding/json does.
//
// # Never blocking the decision path
//
// Writer.Write copies the record into a bounded queue and returns; a
// background goroutine encodes records (hand-rolled append-style JSON, no
// reflection, no allocation per record) and writes them to the sinks in
// batches. When the queue is full the record is dropped and counted
// (Writer.Dropped). A sink that stalls therefore costs records, never
// decisions.
//
// The agent answers the kernel before it writes the audit record (a logger
// waiting on a permission event that waits on the logger is a deadlock).
// For the same reason the audit file must not live on a filesystem the
// agent marks for permission events: the sink's own writes and rotations
// would raise events the agent must answer, and a stalled answer would
// stall the log. Choosing the path is the caller's concern; the agent
// should refuse a log path under a marked mount.
//
// # Files
//
//	doc.go      this comment and the schema
//	record.go   Record, the decision and reason names, AppendJSON
//	writer.go   Writer: bounded queue, background encoder, drop accounting
//	sink.go     Sink, NewStreamSink, NewFileSink (rotation, Reopen)
package audit
