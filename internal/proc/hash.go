package proc

import "fmt"

// flight is one executable being hashed; callers asking for the same
// ExeID meanwhile wait on done.
type flight struct {
	done chan struct{}
	sum  [32]byte
	err  error
}

// SHA256 returns the SHA-256 of p's executable, computed once per ExeID
// and cached (bounded, least recently used first out). Concurrent calls
// for one ExeID read the file once. Errors (not cached) wrap ErrNoExe for a
// kernel thread, ErrGone when the process exited, ErrChanged when the file
// is no longer the one p names or changed while being read, and
// ErrTooLarge above Options.MaxHashSize.
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
		r.hashedShared.Add(1)
		<-f.done
		return f.sum, f.err
	}
	f := &flight{done: make(chan struct{})}
	r.inflight[id] = f
	r.hmu.Unlock()

	defer func() {
		// Deferred so that waiters are released on every path.
		r.hmu.Lock()
		delete(r.inflight, id)
		if f.err == nil {
			r.hashes.put(id, f.sum)
		}
		r.hmu.Unlock()
		close(f.done)
	}()
	r.hashReads.Add(1)
	f.sum, f.err = r.hashExe(p)
	if f.err != nil {
		f.err = fmt.Errorf("proc: sha256: pid %d: %w", p.PID, f.err)
	}
	return f.sum, f.err
}
