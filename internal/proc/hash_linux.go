package proc

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// hashExeTrusted reads p's executable through /proc/PID/exe and hashes
// it, checking before and after the read that it is the file p.ExeID
// names. When the leader has exited (Process.Thread, or since the lookup),
// the link of a running thread is read: every thread has the process's
// executable. trusted says whether the sum may be cached by ExeID (see
// SHA256 and contentGuarded).
func (r *Resolver) hashExeTrusted(p *Process) (sum [32]byte, trusted bool, err error) {
	f, err := os.Open(r.taskFile(p.PID, p.Thread, "exe"))
	if errors.Is(err, os.ErrNotExist) {
		if tid, terr := r.liveTask(p.PID, false); terr == nil && tid != 0 {
			f, err = os.Open(r.taskFile(p.PID, tid, "exe"))
		}
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return sum, false, fmt.Errorf("open exe: %w: %w", ErrGone, err)
		}
		return sum, false, fmt.Errorf("open exe: %w", err)
	}
	defer f.Close()
	id, err := fileID(f)
	if err != nil {
		return sum, false, err
	}
	if id != p.ExeID {
		return sum, false, fmt.Errorf("exe is %+v, process was seen with %+v: %w", id, p.ExeID, ErrChanged)
	}
	if id.Size > r.opts.MaxHashSize {
		return sum, false, fmt.Errorf("%d bytes, limit %d: %w", id.Size, r.opts.MaxHashSize, ErrTooLarge)
	}
	// Decided before the read, on the same file: the owner and mode
	// cannot change without a new change time, and so a new ExeID.
	trusted = contentGuarded(f)
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, r.opts.MaxHashSize+1))
	if err != nil {
		return sum, false, fmt.Errorf("read exe: %w", err)
	}
	after, err := fileID(f)
	if err != nil {
		return sum, false, err
	}
	if n != id.Size || after != id {
		return sum, false, fmt.Errorf("modified while being read: %w", ErrChanged)
	}
	h.Sum(sum[:0])
	return sum, trusted, nil
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

// guardedFS are the file systems (statfs(2) f_type, from
// include/uapi/linux/magic.h) on which a file's content changes only
// through this kernel, so only by those allowed to write the file. Not
// listed, so never trusted: network file systems (NFS, CIFS, 9p,
// virtiofs), whose server changes files at will, FUSE, whose server also
// says who owns them, and any other.
var guardedFS = map[int64]bool{
	0xef53:     true, // ext2, ext3, ext4
	0x58465342: true, // xfs
	0x9123683e: true, // btrfs
	0xf2f52010: true, // f2fs
	0x01021994: true, // tmpfs
	0x858458f6: true, // ramfs
	0x73717368: true, // squashfs
	0xe0f5e1e2: true, // erofs
	0x794c7630: true, // overlayfs: owner and content are those of its layers' files
}

// contentGuarded reports whether only root, or the user this process runs
// as (who could subvert the process itself), can change f's content: f
// is owned by one of them, neither its group nor others may write it
// (with an ACL the group bits are the ACL's mask, so no named user or
// group may write either), and it is on a file system in guardedFS. Root,
// and a process with CAP_DAC_OVERRIDE or CAP_FOWNER, can still change it
// unseen: resisting root is not this cache's job. So can a process that
// opened it for writing, or mapped it shared and writable, before root
// took it over (chown, chmod): such a descriptor keeps its access.
func contentGuarded(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || (st.Uid != 0 && int64(st.Uid) != int64(os.Geteuid())) || st.Mode&0o022 != 0 {
		return false
	}
	var sfs syscall.Statfs_t
	if err := syscall.Fstatfs(int(f.Fd()), &sfs); err != nil {
		return false
	}
	return guardedFS[int64(sfs.Type)]
}
