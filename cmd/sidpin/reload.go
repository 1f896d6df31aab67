package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/fswatch"
)

// reloadDebounce lets an editor or a deploy tool finish writing (often a rename and a chmod after the
// write) before the file is read.
const reloadDebounce = 250 * time.Millisecond

// reloader re-reads the config file on SIGHUP and when the file changes, and applies it.
type reloader struct {
	file   string
	apply  func(*configs.Config) (backends.Changes, error)
	log    *slog.Logger
	listen string // the -listen override of the command line, which a reload keeps
}

// run watches until ctx ends. The file's directory is watched, not the file: editors and Kubernetes
// config maps replace the file (rename, symlink swap), which a watch on the file itself would lose.
func (r *reloader) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	events, stop := r.watch()
	defer stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload("SIGHUP")
		case <-events:
			debounce = time.After(reloadDebounce)
		case <-debounce:
			debounce = nil
			r.reload("config file changed")
		}
	}
}

// watch returns a channel that receives when the config file may have changed.
func (r *reloader) watch() (<-chan struct{}, func()) {
	out := make(chan struct{}, 1)
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(filepath.Dir(r.file))
	}
	if err != nil {
		r.log.Warn("config file not watched; reload with SIGHUP", "file", r.file, "err", err)
		return out, func() {}
	}
	base := filepath.Base(r.file)
	// "..data" is the symlink a Kubernetes config map swaps on update.
	keep := func(path string) bool {
		name := filepath.Base(path)
		return name == base || name == "..data"
	}
	go fswatch.Forward(w, keep, func(err error) { r.log.Warn("config file watch", "err", err) }, out)
	return out, func() { w.Close() }
}

// reload reads and applies the file; an invalid file changes nothing.
func (r *reloader) reload(why string) {
	cfg, err := configs.Load(r.file)
	if err != nil {
		r.log.Error("config reload refused; the running config is kept", "file", r.file, "trigger", why, "errors", err.Error())
		return
	}
	if r.listen != "" {
		cfg.Listen = r.listen
	}
	ch, err := r.apply(cfg)
	if err != nil {
		r.log.Error("config reload refused; the running config is kept", "file", r.file, "trigger", why, "errors", err.Error())
		return
	}
	if ch.Empty() {
		r.log.Info("config reloaded: no node changed", "file", r.file, "trigger", why)
		return
	}
	r.log.Info("config reloaded", "file", r.file, "trigger", why, "added", ch.Added, "updated", ch.Updated,
		"draining", ch.Draining, "closed", ch.Closed)
}
