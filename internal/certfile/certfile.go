// Package certfile serves a TLS certificate and key from files and loads them again when they change
// (a renewal by certbot or cert-manager, a Kubernetes secret's symlink swap): new handshakes get the
// new pair, connections already open keep theirs. A new pair that does not load (a half-written file,
// a key that does not match) is refused and logged, and the pair in use stays.
package certfile

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sidpin/sidpin/internal/fswatch"
)

// Reloader holds the pair in use.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	observe           func(err error) // each reload's outcome (metrics); may be nil

	cur atomic.Pointer[tls.Certificate]

	mu                  sync.Mutex
	certPEM, keyPEM     []byte // the pair in use, as read
	badCert, badKey     []byte // the last pair refused: not logged again until the files change
	PollEvery, Debounce time.Duration
}

// New loads the pair; an error when it does not load (sidpin does not start without one).
func New(certFile, keyFile string, log *slog.Logger, observe func(error)) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log, observe: observe,
		PollEvery: 10 * time.Second, Debounce: 250 * time.Millisecond}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	if err := r.use(certPEM, keyPEM); err != nil {
		return nil, err
	}
	return r, nil
}

// GetCertificate is tls.Config's: the pair in use.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// Current is the pair in use.
func (r *Reloader) Current() *tls.Certificate { return r.cur.Load() }

func (r *Reloader) read() (certPEM, keyPEM []byte, err error) {
	certPEM, err1 := os.ReadFile(r.certFile)
	keyPEM, err2 := os.ReadFile(r.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, fmt.Errorf("certfile: %w", err)
	}
	return certPEM, keyPEM, nil
}

// use loads a pair and makes it the one in use.
func (r *Reloader) use(certPEM, keyPEM []byte) error {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("certfile: %s and %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	r.cur.Store(&cert)
	r.certPEM, r.keyPEM = certPEM, keyPEM
	return nil
}

// Reload reads the files and, when they changed, uses the new pair if it loads. It returns the
// error of a new pair refused (the old one stays), nil when nothing changed or the new pair is in use.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, keyPEM, err := r.read()
	switch {
	case err != nil:
		return r.refused(nil, nil, err)
	case bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM):
		return nil
	case bytes.Equal(certPEM, r.badCert) && bytes.Equal(keyPEM, r.badKey):
		return nil // refused already
	}
	if err := r.use(certPEM, keyPEM); err != nil {
		return r.refused(certPEM, keyPEM, err)
	}
	r.badCert, r.badKey = nil, nil
	leaf := r.cur.Load().Leaf
	if leaf != nil {
		r.log.Info("tls certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
	if r.observe != nil {
		r.observe(nil)
	}
	return nil
}

func (r *Reloader) refused(certPEM, keyPEM []byte, err error) error {
	if certPEM != nil {
		r.badCert, r.badKey = certPEM, keyPEM
	}
	r.log.Error("tls certificate reload refused; the certificate in use stays", "err", err)
	if r.observe != nil {
		r.observe(err)
	}
	return err
}

// Run reloads when the files' directories report a change (after Debounce: writers take several
// steps) and every PollEvery in any case, until ctx ends.
func (r *Reloader) Run(ctx context.Context) {
	events := make(chan struct{}, 1)
	if w, err := fsnotify.NewWatcher(); err == nil {
		defer w.Close()
		for _, dir := range uniqueDirs(r.certFile, r.keyFile) {
			if err := w.Add(dir); err != nil {
				r.log.Warn("tls certificate directory not watched; polled instead", "dir", dir, "err", err)
			}
		}
		go fswatch.Forward(w, nil, nil, events) // ends when w is closed, as Run returns
	}
	poll := time.NewTicker(r.PollEvery)
	defer poll.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			debounce = time.After(r.Debounce)
		case <-debounce:
			debounce = nil
			_ = r.Reload()
		case <-poll.C:
			_ = r.Reload()
		}
	}
}

func uniqueDirs(files ...string) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, f := range files {
		if d := filepath.Dir(f); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}
