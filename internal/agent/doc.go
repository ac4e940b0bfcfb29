// Package agent is the node daemon: it loads policies, detects its
// environment, marks the filesystems that hold protected files, and answers
// every fanotify permission event on them with the policy's decision.
//
// The event path, in order of cost:
//
//  1. The reader goroutine reads events in batches. The agent's own events
//     are allowed at once (deciding them could deadlock it on itself).
//  2. For every other event it reads the file's path and identity from the
//     event's descriptor and asks the compiled policy whether anything
//     covers the file, by path or, through the identity index, by device
//     and inode (hard links, bind mounts, other mount namespaces). Files no
//     policy covers are allowed there, without a process lookup, and may
//     be put behind a kernel ignore mark so they are not asked again.
//  3. Covered files go to a worker pool, which looks up the process
//     (executable, credentials, container), decides, answers, and writes
//     the audit record after answering. Each covered event has a deadline;
//     past it, or when the queue is full, the event is answered by the
//     failure mode and the failure is counted and audited.
//
// Every event is answered exactly once and its descriptors closed, on
// every path, including errors and shutdown. Closing the fanotify
// descriptor (also when the agent is killed) makes the kernel allow every
// pending event, so no process on the host is left waiting.
//
// Files:
//   - agent.go: Agent, New, Run, Reload, shutdown.
//   - events.go: the reader, the fast path, workers and deadlines.
//   - marks.go: which filesystems to mark, kept current with policies and mounts.
//   - index.go: the identity index of protected files; frozen.go: its
//     compact table of the files found by walking the policies' roots.
//   - exempt.go: the hypervisor disk-image exemption.
//   - status.go: Status, the status socket and its client.
//   - metrics.go: Prometheus metrics, /healthz and /readyz.
//   - health.go: binding the status socket safely, and the client that
//     believes only a root listener.
//   - grant_linux.go: whether an open that found an exec's grant is that
//     exec's own (the threads' current system calls).
//   - preopen_linux.go: protected files already open when the agent starts.
//   - watchdog.go: systemd readiness and watchdog.
//   - hostexe.go: the Subject of a decision, with the host's files of
//     executables rules and the executable's hash.
//   - interp_linux.go: the loader and interpreters, whose opens run code.
//   - watch.go: watching policy files, ready once caught up.
package agent
