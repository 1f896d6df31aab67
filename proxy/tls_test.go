package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/backends"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/testlog"
)

// testPKI is a throwaway CA with one server and one client certificate, written as PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	serverTLS                     *tls.Config // the node's: its certificate, and client certificates required
}

func newTestPKI(t *testing.T, serverName string) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sidpin test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage x509.ExtKeyUsage, dns []string) (certPEM, keyPEM []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "sidpin test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: dns,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	write := func(name string, data []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	sCert, sKey := issue(2, x509.ExtKeyUsageServerAuth, []string{serverName})
	cCert, cKey := issue(3, x509.ExtKeyUsageClientAuth, nil)
	serverPair, err := tls.X509KeyPair(sCert, sKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		caFile:     write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		clientCert: write("client.pem", cCert), clientKey: write("client-key.pem", cKey),
		serverTLS: &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
	}
}

// startTLSChatNode serves a real chat node over TLS (mutual: it requires a client certificate).
func startTLSChatNode(t *testing.T, name string, serverTLS *tls.Config) string {
	t.Helper()
	n, err := chatnode.NewNode(context.Background(), chatnode.NodeConfig{Name: name, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	go n.Serve(tls.NewListener(ln, serverTLS))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return "https://" + ln.Addr().String()
}

// TestTLSNodes: nodes served over mutual TLS, reached by IP with the certificate's name given as
// server_name: polling sessions, WebSocket upgrades and HTTP health checks all go through the pool's
// TLS options; without the CA the nodes are not trusted.
func TestTLSNodes(t *testing.T) {
	pki := newTestPKI(t, "chat.internal")
	urls := []string{startTLSChatNode(t, "node1", pki.serverTLS), startTLSChatNode(t, "node2", pki.serverTLS)}
	tlsOpts := configs.UpstreamTLS{CAFile: pki.caFile, ServerName: "chat.internal", CertFile: pki.clientCert, KeyFile: pki.clientKey}
	p, base, _ := startManagedProxy(t, urls, func(c *configs.Config) {
		c.Pools[0].TLS = tlsOpts
		c.Pools[0].Health.Interval = configs.Duration(50 * time.Millisecond)
		c.Pools[0].Health.Timeout = configs.Duration(time.Second)
	})
	t.Run("polling", func(t *testing.T) {
		seen := map[string]bool{}
		for range 4 {
			_, url := openSession(t, base, "4")
			seen[connectChat(t, url)] = true
			if r := post(t, url, `42["echo","over tls"]`); r.status != 200 || r.body != "ok" {
				t.Fatalf("POST: %d %q", r.status, r.body)
			}
		}
		if len(seen) != 2 {
			t.Fatalf("sessions landed on %v", seen)
		}
	})
	t.Run("websocket upgrade", func(t *testing.T) {
		ws, url, probed := openProbe(t, base)
		if probed != "3probe" {
			t.Fatalf("probe answer %q", probed)
		}
		if r := get(t, url); r.body != "6" { // the held poll ends, as engine.io-client waits for
			t.Fatalf("GET during the upgrade: %q", r.body)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`423["echo","ws over tls"]`))
		if got := readText(t, ws); got != `433["ws over tls"]` {
			t.Fatalf("echo over the upgraded WebSocket: %q", got)
		}
	})
	t.Run("health checks", func(t *testing.T) {
		for _, n := range p.Nodes().Nodes() {
			if n.State() != backends.StateUp || !n.Health().Healthy {
				t.Fatalf("%s is %s: %s", n.Name, n.State(), n.Health().LastErr)
			}
		}
	})
	t.Run("without the CA the nodes are not trusted", func(t *testing.T) {
		untrusted := startProxy(t, urls, func(c *configs.Config) {
			c.Pools[0].TLS = configs.UpstreamTLS{ServerName: "chat.internal", CertFile: pki.clientCert, KeyFile: pki.clientKey}
		})
		if r := get(t, untrusted.base+"/socket.io/?EIO=4&transport=polling"); r.status != 502 {
			t.Fatalf("a handshake to an untrusted node: %d %q", r.status, r.body)
		}
	})
	t.Run("without a client certificate the nodes refuse", func(t *testing.T) {
		anonymous := startProxy(t, urls, func(c *configs.Config) {
			c.Pools[0].TLS = configs.UpstreamTLS{CAFile: pki.caFile, ServerName: "chat.internal"}
		})
		if r := get(t, anonymous.base+"/socket.io/?EIO=4&transport=polling"); r.status == 200 {
			t.Fatalf("a handshake without a client certificate: %d %q", r.status, r.body)
		}
	})
}

// selfSignedFiles writes a self-signed certificate for 127.0.0.1 and its key as PEM files.
func selfSignedFiles(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM := selfSigned(t, "sidpin listener")
	writeAtomically(t, certFile, certPEM)
	writeAtomically(t, keyFile, keyPEM)
	return certFile, keyFile
}

// selfSigned makes a self-signed certificate for 127.0.0.1 named cn, and its key, in PEM.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// writeAtomically replaces path with b as a renewal tool does: a new file renamed over the old one.
func writeAtomically(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestCertificateReload: the listener's certificate files replaced (a renewal) give new handshakes
// the new certificate while a WebSocket opened before keeps its connection and goes on; a bad new
// pair (a key that does not match) is refused, logged and counted, and the certificate in use stays.
func TestCertificateReload(t *testing.T) {
	certFile, keyFile := selfSignedFiles(t)
	certA, keyA := selfSigned(t, "cert A")
	writeAtomically(t, certFile, certA)
	writeAtomically(t, keyFile, keyA)
	node := startChatNode(t, chatnode.NodeConfig{Name: "node1"})
	cfg, err := configs.QuickStart("127.0.0.1:0", []string{node}, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS = configs.TLS{CertFile: certFile, KeyFile: keyFile}
	var logs testlog.Buffer
	store, _ := affinity.NewMemoryStore(affinity.MemoryOptions{})
	p, addr := serveProxyLogged(t, cfg, store, slog.New(slog.NewTextHandler(&logs, nil)))
	served := func() string { // the certificate a new handshake gets
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test's own certificates
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := served(); got != "cert A" {
		t.Fatalf("served %q at start", got)
	}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the test's own certificates
	ws, _, err := d.Dial("wss://"+addr+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readText(t, ws) // the open packet

	certB, keyB := selfSigned(t, "cert B")
	writeAtomically(t, keyFile, keyB)
	writeAtomically(t, certFile, certB)
	waitFor(t, "the renewed certificate served", func() bool { return served() == "cert B" })
	_ = ws.WriteMessage(websocket.TextMessage, []byte("40"))
	if got := readText(t, ws); !strings.HasPrefix(got, `40{"sid":`) {
		t.Fatalf("the WebSocket opened before the renewal: %q", got)
	}
	if cn := ws.UnderlyingConn().(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "cert A" {
		t.Fatalf("the open connection's certificate is %q", cn)
	}

	certC, _ := selfSigned(t, "cert C")
	writeAtomically(t, certFile, certC) // C's certificate with B's key: a pair that does not match
	waitFor(t, "the bad pair refused", func() bool {
		return counterValue(t, p, "sidpin_tls_certificate_reloads_total", map[string]string{"result": "refused"}) >= 1
	})
	if got := served(); got != "cert B" {
		t.Fatalf("served %q after a bad pair, want the one in use (cert B)", got)
	}
	if !strings.Contains(logs.String(), "tls certificate reload refused") {
		t.Fatalf("the refusal was not logged: %s", logs.String())
	}
	if ok := counterValue(t, p, "sidpin_tls_certificate_reloads_total", map[string]string{"result": "ok"}); ok < 1 {
		t.Fatalf("reloads counted ok: %v", ok)
	}
}

// TestTLSClientsPlainNodes: TLS on the client listener in front of plain-HTTP nodes (the usual
// deployment): a client's request arrives as https and goes to the node as http, polling and
// WebSocket alike.
func TestTLSClientsPlainNodes(t *testing.T) {
	certFile, keyFile := selfSignedFiles(t)
	node := startChatNode(t, chatnode.NodeConfig{Name: "node1"})
	base := "https://" + strings.TrimPrefix(startProxy(t, []string{node}, func(c *configs.Config) {
		c.TLS = configs.TLS{CertFile: certFile, KeyFile: keyFile}
	}).base, "http://")
	tlsConf := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test's own certificate
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	do := func(method, url, body string) (int, string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := do("GET", base+"/socket.io/?EIO=4&transport=polling", "")
	i := strings.Index(body, `"sid":"`)
	if status != 200 || i < 0 {
		t.Fatalf("handshake over TLS: %d %q", status, body)
	}
	sid := body[i+7:]
	sid = sid[:strings.IndexByte(sid, '"')]
	url := base + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	if status, body := do("POST", url, "40"); status != 200 || body != "ok" {
		t.Fatalf("POST over TLS: %d %q", status, body)
	}
	if status, body := do("GET", url, ""); status != 200 || !strings.Contains(body, "welcome") {
		t.Fatalf("GET over TLS: %d %q", status, body)
	}
	d := websocket.Dialer{TLSClientConfig: tlsConf}
	ws, _, err := d.Dial(strings.Replace(base, "https", "wss", 1)+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatalf("WebSocket over TLS: %v", err)
	}
	defer ws.Close()
	if got := readText(t, ws); !strings.HasPrefix(got, `0{"sid":`) {
		t.Fatalf("WebSocket-first open packet over TLS: %q", got)
	}
}
