package configs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// UpstreamTLS configures the connections to a pool's https:// nodes: polling, health checks and
// WebSocket tunnels alike. Nodes are verified by default, against the system's CAs.
type UpstreamTLS struct {
	// CAFile holds the PEM certificates of the CAs that sign the nodes' certificates (default: the
	// system's).
	CAFile string `yaml:"ca_file"`
	// ServerName is the name checked in every node's certificate (default: the host of each node's
	// URL), for nodes reached by IP address.
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are sidpin's client certificate, for nodes that ask for one (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify accepts any certificate. For tests only: it lets anyone on the path between
	// sidpin and the nodes read and change every session.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Enabled reports whether any upstream TLS option is set.
func (t UpstreamTLS) Enabled() bool { return t != UpstreamTLS{} }

// ClientConfig builds the tls.Config sidpin dials a node of host with (the host of its URL): the one
// place where upstream TLS options become a config, used by the nodes' transport and by validation.
func (t UpstreamTLS) ClientConfig(host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented
	if t.ServerName != "" {
		c.ServerName = t.ServerName
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %q holds no PEM certificate", t.CAFile)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("cert_file and key_file must be set together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
