package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchPaths calls fn (debounced by quiet) whenever one of paths changes.
// Directories are watched themselves, which also catches the atomic
// symlink swap of a Kubernetes ConfigMap volume (..data is replaced by a
// rename in the directory); files are watched through their directory so
// that editors that replace a file by renaming are seen too.
//
// No change is lost to the moment before the watches exist: once they are
// established, fn is called once (the caller's fn compares what it loads
// with what it has, so this costs a read when nothing changed) and only
// then is ready called. A change made after ready returns is seen by a
// watch; one made before it is picked up by that first call. An error of
// the watcher (the kernel's inotify queue overflowed, so events were
// dropped) is treated as a change too.
func watchPaths(ctx context.Context, paths []string, quiet time.Duration, ready, fn func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	files := map[string]bool{}
	dirs := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		fi, err := os.Stat(abs)
		if err == nil && fi.IsDir() {
			if err := w.Add(abs); err != nil {
				return err
			}
			dirs[abs] = true
			continue
		}
		files[abs] = true
		if err := w.Add(filepath.Dir(abs)); err != nil {
			return err
		}
	}
	fn()
	if ready != nil {
		ready()
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	fire := make(chan struct{}, 1)
	schedule := func() {
		if timer == nil {
			timer = time.AfterFunc(quiet, func() {
				select {
				case fire <- struct{}{}:
				default:
				}
			})
		} else {
			timer.Reset(quiet)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if len(files) > 0 && !files[ev.Name] && !dirs[filepath.Dir(ev.Name)] {
				continue
			}
			schedule()
		case <-fire:
			fn()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				schedule()
			}
		}
	}
}
