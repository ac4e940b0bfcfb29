//go:build !linux

package fanotify

import (
	"context"
	"fmt"
	"syscall"
)

// Listener is a fanotify group; fanotify exists only on Linux, so every
// method returns an error matching ErrNotSupported.
type Listener struct {
	pid int32
}

var errPlatform = fmt.Errorf("fanotify: linux only: %w", ErrNotSupported)

// Open returns an error matching ErrNotSupported.
func Open(opts Options) (*Listener, error) { return nil, errPlatform }

// Features reports no features.
func (l *Listener) Features() Features { return Features{} }

// Close does nothing.
func (l *Listener) Close() error { return nil }

// Mark returns an error matching ErrNotSupported.
func (l *Listener) Mark(flags uint, mask uint64, path string) error { return errPlatform }

// Unmark returns an error matching ErrNotSupported.
func (l *Listener) Unmark(flags uint, mask uint64, path string) error { return errPlatform }

// MarkFilesystem returns an error matching ErrNotSupported.
func (l *Listener) MarkFilesystem(path string, mask uint64) error { return errPlatform }

// MarkMount returns an error matching ErrNotSupported.
func (l *Listener) MarkMount(path string, mask uint64) error { return errPlatform }

// MarkInode returns an error matching ErrNotSupported.
func (l *Listener) MarkInode(path string, mask uint64) error { return errPlatform }

// Ignore returns an error matching ErrNotSupported.
func (l *Listener) Ignore(path string, mask uint64) error { return errPlatform }

// IgnoreFd returns an error matching ErrNotSupported.
func (l *Listener) IgnoreFd(fd int32, mask uint64) error { return errPlatform }

// Unignore returns an error matching ErrNotSupported.
func (l *Listener) Unignore(path string, mask uint64) error { return errPlatform }

// Flush returns an error matching ErrNotSupported.
func (l *Listener) Flush(flags uint) error { return errPlatform }

// ReadEvents returns an error matching ErrNotSupported.
func (l *Listener) ReadEvents(ctx context.Context, buf []byte, dst []Event) ([]Event, error) {
	return dst[:0], errPlatform
}

// Respond returns an error matching ErrNotSupported.
func (l *Listener) Respond(fd int32, allow bool) error { return errPlatform }

// RespondAll returns an error matching ErrNotSupported.
func (l *Listener) RespondAll(rs []Response) error { return errPlatform }

// PathOf returns an error matching ErrNotSupported.
func PathOf(fd int32, buf []byte) ([]byte, error) { return nil, errPlatform }

// Stat returns an error matching ErrNotSupported.
func Stat(fd int32) (FileStat, error) { return FileStat{}, errPlatform }

// closeFd fails: no platform but Linux hands out event descriptors.
func closeFd(fd int32) error { return errPlatform }

func errnoNotSupported(errno syscall.Errno) bool { return false }
