package proc

import "fmt"

// flight is one executable being hashed; callers asking for the same
// ExeID meanwhile wait on done.
type flight struct {
	done    chan struct{}
	sum     [32]byte
	trusted bool // the sum may be cached and shared (see SHA256)
	err     error
}

// SHA256 returns the SHA-256 of p's executable. Errors (never cached) wrap
// ErrNoExe for a kernel thread, ErrGone when the process exited,
// ErrChanged when the file is no longer the one p names or changed while
// being read, and ErrTooLarge above Options.MaxHashSize.
//
// A sum is cached by ExeID (bounded, least recently used first out) only
// when the file's content cannot change without a new ExeID unless root
// changes it: the file is owned by root (or by the user the Resolver runs
// as, who could subvert the Resolver itself), no one else may write it
// (neither the group nor others have write permission, which also bounds
// what an ACL grants), and it is on a local file system whose every
// change the kernel sees (ext2/3/4, xfs, btrfs, f2fs, tmpfs, ramfs,
// squashfs, erofs, overlayfs). ExeID is not enough by itself: a write
// through a shared writable mapping (mmap(2) MAP_SHARED) changes a tmpfs
// file, and for a while a dirty page of any file system, without moving
// its change time; within the change time's granularity, write(2) does
// not move it either; and a network or FUSE file system changes at the
// server's will. Any other executable is read and hashed again at each
// call, and a call never takes the sum of a read that another call
// started before it: that read may predate the change.
//
// Concurrent calls for one cacheable ExeID read the file once.
func (r *Resolver) SHA256(p *Process) ([32]byte, error) {
	if p == nil || p.KernelThread || p.Exe == "" {
		pid := int32(0)
		if p != nil {
			pid = p.PID
		}
		return [32]byte{}, fmt.Errorf("proc: sha256: pid %d: %w", pid, ErrNoExe)
	}
	id := p.ExeID
	r.hmu.Lock()
	if sum, ok := r.hashes.get(id); ok {
		r.hmu.Unlock()
		r.hashHits.Add(1)
		return sum, nil
	}
	if f, ok := r.inflight[id]; ok {
		r.hmu.Unlock()
		<-f.done
		if f.trusted || f.err != nil {
			r.hashedShared.Add(1)
			return f.sum, f.err
		}
		// The file may have changed after that read began.
		r.hashReads.Add(1)
		sum, _, err := r.hashExeTrusted(p)
		if err != nil {
			err = fmt.Errorf("proc: sha256: pid %d: %w", p.PID, err)
		}
		return sum, err
	}
	f := &flight{done: make(chan struct{})}
	r.inflight[id] = f
	r.hmu.Unlock()

	defer func() {
		// Deferred so that waiters are released on every path.
		r.hmu.Lock()
		delete(r.inflight, id)
		if f.err == nil && f.trusted {
			r.hashes.put(id, f.sum)
		}
		r.hmu.Unlock()
		close(f.done)
	}()
	r.hashReads.Add(1)
	f.sum, f.trusted, f.err = r.hashExeTrusted(p)
	if f.err != nil {
		f.err = fmt.Errorf("proc: sha256: pid %d: %w", p.PID, f.err)
	}
	return f.sum, f.err
}
