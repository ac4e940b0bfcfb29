package agent

import (
	"context"
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
func watchPaths(ctx context.Context, paths []string, quiet time.Duration, fn func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	files := map[string]bool{}
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
			continue
		}
		files[abs] = true
		if err := w.Add(filepath.Dir(abs)); err != nil {
			return err
		}
	}
	var timer *time.Timer
	fire := make(chan struct{}, 1)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			dir := filepath.Dir(ev.Name)
			if len(files) > 0 && !files[ev.Name] && !watchedDir(paths, dir) {
				continue
			}
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
		case <-fire:
			fn()
		case <-w.Errors:
		}
	}
}

func watchedDir(paths []string, dir string) bool {
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil && abs == dir {
			return true
		}
	}
	return false
}
