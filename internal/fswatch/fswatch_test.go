package fswatch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestForward writes files in a watched directory: only the kept ones signal, and signals coalesce.
func TestForward(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keep   func(string) bool
		writes []string
		signal bool
	}{
		{"every event", nil, []string{"a.pem"}, true},
		{"a kept name", func(p string) bool { return filepath.Base(p) == "sidpin.yaml" }, []string{"sidpin.yaml"}, true},
		{"another name", func(p string) bool { return filepath.Base(p) == "sidpin.yaml" }, []string{"other.yaml"}, false},
		{"many writes, one signal waiting", func(p string) bool { return strings.HasSuffix(p, ".pem") }, []string{"a.pem", "b.pem", "c.pem"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := fsnotify.NewWatcher()
			if err != nil {
				t.Skipf("no fsnotify here: %v", err)
			}
			if err := w.Add(dir); err != nil {
				t.Fatal(err)
			}
			out := make(chan struct{}, 1)
			done := make(chan struct{})
			go func() { Forward(w, tc.keep, nil, out); close(done) }()
			for _, f := range tc.writes {
				if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-out:
				if !tc.signal {
					t.Fatal("a signal for a name not kept")
				}
			case <-time.After(500 * time.Millisecond):
				if tc.signal {
					t.Fatal("no signal within 500 ms")
				}
			}
			w.Close()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Forward did not return once the watcher was closed")
			}
		})
	}
}
