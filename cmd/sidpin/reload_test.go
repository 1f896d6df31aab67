package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/testlog"
)

const reloadBase = `pools: [{name: chat, nodes: [{name: a, url: "http://127.0.0.1:1", weight: WEIGHT}]}]
`

// TestReloadOnChangeAndSIGHUP: a changed file is applied (after the debounce), an invalid one is
// refused with the file and field logged, and SIGHUP re-reads the file.
func TestReloadOnChangeAndSIGHUP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sidpin.yaml")
	write := func(s string) {
		t.Helper()
		// Write then rename, as editors and deploy tools do.
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Replace(reloadBase, "WEIGHT", "1", 1))
	applied := make(chan int, 10)
	logs := &testlog.Buffer{}
	r := &reloader{file: file, log: slog.New(slog.NewTextHandler(logs, nil)),
		apply: func(c *configs.Config) (backends.Changes, error) {
			applied <- c.Pools[0].Nodes[0].Weight
			return backends.Changes{Updated: []string{"chat/a"}}, nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(100 * time.Millisecond) // the watch and the signal handler are in place

	expect := func(want int, what string) {
		t.Helper()
		select {
		case got := <-applied:
			if got != want {
				t.Fatalf("%s: applied weight %d, want %d", what, got, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: nothing applied; log:\n%s", what, logs.String())
		}
	}
	write(strings.Replace(reloadBase, "WEIGHT", "2", 1))
	expect(2, "file changed")

	write(strings.Replace(reloadBase, "WEIGHT", "0", 1))
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(logs.String(), "config reload refused") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, "config reload refused") || !strings.Contains(l, file) || !strings.Contains(l, "pools[0].nodes[0].weight") {
		t.Fatalf("an invalid file must be refused naming the file and the field; log:\n%s", l)
	}
	select {
	case w := <-applied:
		t.Fatalf("an invalid config was applied (weight %d)", w)
	default:
	}

	write(strings.Replace(reloadBase, "WEIGHT", "3", 1))
	expect(3, "file fixed")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expect(3, "SIGHUP")
}
