// Package fswatch turns a directory watcher's events into "look again" signals, for the config file
// and the TLS files that sidpin reloads when they change.
package fswatch

import "github.com/fsnotify/fsnotify"

// Forward sends on out, without blocking (give it room for one: signals coalesce), for each event of
// w whose path keep accepts (nil: every event), and hands w's errors to onErr (nil: dropped), until
// w is closed.
func Forward(w *fsnotify.Watcher, keep func(path string) bool, onErr func(error), out chan<- struct{}) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if keep != nil && !keep(ev.Name) {
				continue
			}
			select {
			case out <- struct{}{}:
			default:
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if onErr != nil {
				onErr(err)
			}
		}
	}
}
