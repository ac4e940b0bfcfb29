//go:build !linux

package fanotify

import "context"

// Watcher is a fanotify name-change watcher; fanotify exists only on Linux,
// so every method returns an error matching ErrNotSupported.
type Watcher struct{}

// OpenWatcher returns an error matching ErrNotSupported.
func OpenWatcher(opts WatchOptions) (*Watcher, error) { return nil, errPlatform }

// Features reports no features.
func (w *Watcher) Features() WatchFeatures { return WatchFeatures{} }

// WatchFilesystem returns an error matching ErrNotSupported.
func (w *Watcher) WatchFilesystem(path string) error { return errPlatform }

// Unwatch returns an error matching ErrNotSupported.
func (w *Watcher) Unwatch(path string) error { return errPlatform }

// Read returns an error matching ErrNotSupported.
func (w *Watcher) Read(ctx context.Context, dst []NameEvent) ([]NameEvent, error) {
	return dst[:0], errPlatform
}

// WatchesDevice reports false.
func (w *Watcher) WatchesDevice(dev uint64) bool { return false }

// StatHandle returns an error matching ErrNotSupported.
func (w *Watcher) StatHandle(h Handle) (FileStat, error) { return FileStat{}, errPlatform }

// Close does nothing.
func (w *Watcher) Close() error { return nil }
