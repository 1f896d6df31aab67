package discovery

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// resolvConf is what sidpin reads of /etc/resolv.conf when a pool names no resolver: the servers to
// ask, and how a relative name is searched (a Kubernetes pod's file names the cluster's domains,
// with ndots:5).
type resolvConf struct {
	servers []string // ip:port
	search  []string // absolute domains
	ndots   int
}

// Bounds of what is read: glibc uses 3 servers and 6 search domains; a longer file is not a
// resolver configuration.
const (
	maxServers    = 3
	maxSearch     = 6
	maxResolvConf = 64 << 10
)

// defaultResolvConf is what applies without a readable file: the local resolver, no search.
var defaultResolvConf = resolvConf{servers: []string{"127.0.0.1:53"}, ndots: 1}

// readResolvConf reads path (re-read for every resolution: a pod's file can change).
func readResolvConf(path string) resolvConf {
	f, err := os.Open(path)
	if err != nil {
		return defaultResolvConf
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResolvConf))
	if err != nil {
		return defaultResolvConf
	}
	return parseResolvConf(b)
}

// parseResolvConf reads the nameserver, search, domain and options ndots lines; everything else is
// ignored, as the C library does.
func parseResolvConf(b []byte) resolvConf {
	rc := resolvConf{ndots: 1}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1024), maxResolvConf)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && len(rc.servers) < maxServers {
				rc.servers = append(rc.servers, netip.AddrPortFrom(a.WithZone(""), 53).String())
			}
		case "search", "domain": // the last of them wins, as in the C library
			rc.search = rc.search[:0]
			for _, d := range f[1:] {
				if d = strings.TrimSuffix(d, "."); d != "" && len(rc.search) < maxSearch {
					rc.search = append(rc.search, d+".")
				}
			}
		case "options":
			for _, o := range f[1:] {
				if v, ok := strings.CutPrefix(o, "ndots:"); ok {
					if n, err := strconv.Atoi(v); err == nil {
						rc.ndots = min(max(n, 0), 15)
					}
				}
			}
		}
	}
	if len(rc.servers) == 0 {
		rc.servers = defaultResolvConf.servers
	}
	return rc
}

// candidates are the absolute names to try for name, in order: a name with a final dot as it is;
// else with ndots dots or more first as it is, then under each search domain; with fewer, the
// search domains first.
func (rc resolvConf) candidates(name string) []string {
	if strings.HasSuffix(name, ".") {
		return []string{name}
	}
	var under []string
	for _, d := range rc.search {
		under = append(under, name+"."+d)
	}
	if strings.Count(name, ".") >= rc.ndots {
		return append([]string{name + "."}, under...)
	}
	return append(under, name+".")
}
