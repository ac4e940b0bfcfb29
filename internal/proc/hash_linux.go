package proc

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// hashExe reads p's executable through /proc/PID/exe and hashes it,
// checking before and after the read that it is the file p.ExeID names.
// When the leader has exited (Process.Thread, or since the lookup), the
// link of a running thread is read: every thread has the process's
// executable.
func (r *Resolver) hashExe(p *Process) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(r.taskFile(p.PID, p.Thread, "exe"))
	if errors.Is(err, os.ErrNotExist) {
		if tid, terr := r.liveTask(p.PID, false); terr == nil && tid != 0 {
			f, err = os.Open(r.taskFile(p.PID, tid, "exe"))
		}
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return sum, fmt.Errorf("open exe: %w: %w", ErrGone, err)
		}
		return sum, fmt.Errorf("open exe: %w", err)
	}
	defer f.Close()
	id, err := fileID(f)
	if err != nil {
		return sum, err
	}
	if id != p.ExeID {
		return sum, fmt.Errorf("exe is %+v, process was seen with %+v: %w", id, p.ExeID, ErrChanged)
	}
	if id.Size > r.opts.MaxHashSize {
		return sum, fmt.Errorf("%d bytes, limit %d: %w", id.Size, r.opts.MaxHashSize, ErrTooLarge)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, r.opts.MaxHashSize+1))
	if err != nil {
		return sum, fmt.Errorf("read exe: %w", err)
	}
	after, err := fileID(f)
	if err != nil {
		return sum, err
	}
	if n != id.Size || after != id {
		return sum, fmt.Errorf("modified while being read: %w", ErrChanged)
	}
	h.Sum(sum[:0])
	return sum, nil
}

func fileID(f *os.File) (ExeID, error) {
	fi, err := f.Stat()
	if err != nil {
		return ExeID{}, fmt.Errorf("stat exe: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ExeID{}, fmt.Errorf("stat exe: no stat_t: %w", ErrNotSupported)
	}
	return ExeID{
		Dev:     uint64(st.Dev),
		Ino:     uint64(st.Ino),
		CtimeNs: int64(st.Ctim.Sec)*1e9 + int64(st.Ctim.Nsec),
		Size:    int64(st.Size),
	}, nil
}
