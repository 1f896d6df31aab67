package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunCheck(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("listen: x\npools:\n  - name: p\n    nodes:\n      - {name: a, url: 'ftp://a'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"reference ok", []string{"-check", "-config", "../../configs/reference.yaml"}, 0, "reference.yaml: ok: listen 0.0.0.0:3200", nil},
		{"demo ok", []string{"-check", "-config", "../../configs/demo.yaml"}, 0, "3 node(s)", nil},
		{"broken lists every error", []string{"-check", "-config", bad}, 1, "", []string{"bad.yaml:1: listen:", "bad.yaml:5: pools[0].nodes[0].url:", "2 problem(s)"}},
		{"missing file", []string{"-check", "-config", "/nonexistent.yaml"}, 1, "", []string{"/nonexistent.yaml"}},
		{"no config", []string{"-check"}, 2, "", []string{"give -config FILE"}},
		{"config and -to", []string{"-config", "x", "-to", "http://a:1"}, 2, "", []string{"cannot be combined"}},
		{"quick start check", []string{"-check", "-listen", "127.0.0.1:0", "-to", "http://127.0.0.1:1,http://127.0.0.1:2"}, 0, "command line: ok: listen 127.0.0.1:0, admin off, store memory, 1 pool(s), 2 node(s)", nil},
		{"quick start bad url", []string{"-check", "-to", "ftp://x"}, 1, "", []string{"pools[0].nodes[0].url"}},
		{"listen override", []string{"-check", "-config", "../../configs/demo.yaml", "-listen", "127.0.0.1:9"}, 0, "listen 127.0.0.1:9", nil},
		{"version", []string{"-version"}, 0, "sidpin dev", nil},
		{"bad flag", []string{"-nope"}, 2, "", []string{"flag provided but not defined"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(c.args, &out, &errOut)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), c.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), c.stdout)
			}
			for _, w := range c.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr %q lacks %q", errOut.String(), w)
				}
			}
		})
	}
}
