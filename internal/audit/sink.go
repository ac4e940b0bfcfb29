package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Sink receives encoded records. The Writer calls Write from its one
// background goroutine with one or more complete JSON lines; Close is
// called once, when the Writer closes.
type Sink interface {
	// Write writes p, which holds whole lines only.
	Write(p []byte) error
	// Close releases the destination.
	Close() error
}

// StreamSink writes records to an io.Writer such as os.Stdout.
type StreamSink struct {
	w io.Writer
}

// NewStreamSink returns a sink writing to w. Closing the sink does not
// close w.
func NewStreamSink(w io.Writer) *StreamSink { return &StreamSink{w: w} }

// Write writes p to the stream.
func (s *StreamSink) Write(p []byte) error {
	if _, err := s.w.Write(p); err != nil {
		return fmt.Errorf("audit: stream sink: %w", err)
	}
	return nil
}

// Close does nothing: the stream belongs to the caller.
func (s *StreamSink) Close() error { return nil }

// FileSink writes JSON lines to a file and rotates it by size: when a
// write would take the file past maxBytes, path is renamed to path.1,
// path.1 to path.2 and so on, keeping backups old files, and a new path is
// started. Rotation happens only between lines; a single line longer than
// maxBytes is written alone into a fresh file. The file is created with
// mode 0600 (an existing file keeps its mode) and its parent directory,
// when missing, with 0700. It is safe for concurrent use.
type FileSink struct {
	path     string
	maxBytes int64
	backups  int

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
}

// NewFileSink opens (appending) or creates path. maxBytes <= 0 disables
// rotation; backups < 0 counts as 0 (the full file is removed when it
// rotates).
func NewFileSink(path string, maxBytes int64, backups int) (*FileSink, error) {
	if path == "" {
		return nil, errors.New("audit: file sink: empty path")
	}
	s := &FileSink{path: path, maxBytes: maxBytes, backups: max(backups, 0)}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the file being written.
func (s *FileSink) Path() string { return s.path }

func (s *FileSink) open() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("audit: file sink: create directory: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: file sink: open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: file sink: stat: %w", err)
	}
	s.f, s.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when it would not fit.
func (s *FileSink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.f == nil {
		// A failed rotation or reopen left no file: try again.
		if err := s.open(); err != nil {
			return err
		}
	}
	for len(p) > 0 {
		chunk := p
		if s.maxBytes > 0 && s.size+int64(len(p)) > s.maxBytes {
			k := -1
			if room := s.maxBytes - s.size; room > 0 {
				k = bytes.LastIndexByte(p[:room], '\n')
			}
			if k < 0 && s.size > 0 {
				if err := s.rotate(); err != nil {
					return err
				}
				continue
			}
			if k < 0 {
				// One line longer than the limit, into an empty file.
				if k = bytes.IndexByte(p, '\n'); k < 0 {
					k = len(p) - 1
				}
			}
			chunk = p[:k+1]
		}
		n, err := s.f.Write(chunk)
		s.size += int64(n)
		if err != nil {
			return fmt.Errorf("audit: file sink: write: %w", err)
		}
		p = p[len(chunk):]
	}
	return nil
}

// rotate shifts the backups and starts a new file. Called with mu held.
func (s *FileSink) rotate() error {
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("audit: file sink: rotate: close: %w", err)
	}
	if s.backups == 0 {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: file sink: rotate: %w", err)
		}
	} else {
		for i := s.backups - 1; i >= 1; i-- {
			err := os.Rename(s.backup(i), s.backup(i+1))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("audit: file sink: rotate: %w", err)
			}
		}
		if err := os.Rename(s.path, s.backup(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: file sink: rotate: %w", err)
		}
	}
	return s.open()
}

func (s *FileSink) backup(i int) string { return s.path + "." + strconv.Itoa(i) }

// Reopen closes and reopens path, for an external rotation (logrotate
// renames the file, then sends SIGHUP).
func (s *FileSink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		if err != nil {
			return fmt.Errorf("audit: file sink: reopen: close: %w", err)
		}
	}
	return s.open()
}

// Close syncs and closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f == nil {
		return nil
	}
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	if err != nil {
		return fmt.Errorf("audit: file sink: close: %w", err)
	}
	return nil
}
