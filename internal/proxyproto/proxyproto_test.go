package proxyproto

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// v2 builds a v2 header: command (0 LOCAL, 1 PROXY), family, the address block and TLV bytes.
func v2(cmd, fam byte, addrs []byte, tlv int) []byte {
	b := append([]byte(nil), v2Sig...)
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)+tlv))
	b = append(b, addrs...)
	return append(b, make([]byte, tlv)...)
}

var tcp4Addrs = []byte{203, 0, 113, 9, 10, 0, 0, 1, 0xc3, 0x50, 0x0c, 0x80} // 203.0.113.9:50000 -> 10.0.0.1:3200

func tcp6Addrs() []byte {
	b := make([]byte, 36)
	copy(b, netip.MustParseAddr("2001:db8::9").AsSlice())
	copy(b[16:], netip.MustParseAddr("2001:db8::1").AsSlice())
	binary.BigEndian.PutUint16(b[32:], 443)
	binary.BigEndian.PutUint16(b[34:], 3200)
	return b
}

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		src  string // "" for none
		n    int
		err  error
	}{
		{"v1 tcp4", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 50000 3200\r\nGET /"), "203.0.113.9:50000", 44, nil},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::9 2001:db8::1 443 3200\r\n"), "[2001:db8::9]:443", 45, nil},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), "", 15, nil},
		{"v1 partial", []byte("PROXY TCP4 203.0"), "", 0, ErrNeedMore},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::9 2001:db8::1 443 3200\r\n"), "", 0, ErrBadHeader},
		{"v1 leading zero port", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 050000 3200\r\n"), "", 0, ErrBadHeader},
		{"v1 port too big", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 65536 3200\r\n"), "", 0, ErrBadHeader},
		{"v1 too long", append([]byte("PROXY TCP4 "), make([]byte, 120)...), "", 0, ErrBadHeader},
		{"v1 missing field", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 50000\r\n"), "", 0, ErrBadHeader},
		{"http", []byte("GET / HTTP/1.1\r\n"), "", 0, ErrNotProxy},
		{"post", []byte("POST / HTTP/1.1\r\n"), "", 0, ErrNotProxy},
		{"v2 tcp4", append(v2(1, 0x11, tcp4Addrs, 0), "GET"...), "203.0.113.9:50000", 28, nil},
		{"v2 tcp4 with tlvs", v2(1, 0x11, tcp4Addrs, 40), "203.0.113.9:50000", 68, nil},
		{"v2 tcp6", v2(1, 0x21, tcp6Addrs(), 0), "[2001:db8::9]:443", 52, nil},
		{"v2 local", v2(0, 0x00, nil, 0), "", 16, nil},
		{"v2 unspec", v2(1, 0x00, nil, 0), "", 16, nil},
		{"v2 partial", v2(1, 0x11, tcp4Addrs, 0)[:20], "", 0, ErrNeedMore},
		{"v2 signature partial", v2Sig[:5], "", 0, ErrNeedMore},
		{"v2 bad version", append(v2Sig[:12:12], 0x11, 0x11, 0, 12), "", 0, ErrBadHeader},
		{"v2 bad command", append(v2Sig[:12:12], 0x22, 0x11, 0, 12), "", 0, ErrBadHeader},
		{"v2 short addresses", v2(1, 0x11, tcp4Addrs[:8], 0), "", 0, ErrBadHeader},
		{"v2 udp", v2(1, 0x12, tcp4Addrs, 0), "", 0, ErrBadHeader},
		{"v2 over the bound", append(append(v2Sig[:12:12], 0x21, 0x11), 0xff, 0xff), "", 0, ErrBadHeader},
		{"v2 bad signature", []byte("\r\n\r\n\x00\r\nQUIZ\n\x21\x11\x00\x0c"), "", 0, ErrNotProxy},
	}
	for _, tc := range cases {
		h, n, err := Parse(tc.in)
		src := ""
		if h.Source.IsValid() {
			src = h.Source.String()
		}
		if !errors.Is(err, tc.err) || (err == nil && (n != tc.n || src != tc.src)) {
			t.Errorf("%s: %q %d %v, want %q %d %v", tc.name, src, n, err, tc.src, tc.n, tc.err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.9 10.0.0.1 50000 3200\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::9 2001:db8::1 443 3200\r\n"))
	f.Add([]byte("PROXY UNKNOWN ffff::1 ::1 1 2\r\n"))
	f.Add(v2(1, 0x11, tcp4Addrs, 7))
	f.Add(v2(1, 0x21, tcp6Addrs(), 0))
	f.Add(v2(0, 0x00, nil, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) || n > MaxV2 {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		if h.Source.IsValid() && h.Source.Addr().Zone() != "" {
			t.Fatalf("a zone in %v", h.Source)
		}
	})
}

// TestListener: a trusted peer's connection is served with the client's address once its header is
// read; without a header it is closed; another peer's connection is served as it is, unless it
// starts with a header, which is refused.
func TestListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trusted := netip.MustParseAddr("127.0.0.2")
	l := NewListener(raw, func(a netip.Addr) bool { return a == trusted }, time.Second)
	defer l.Close()
	addr := raw.Addr().(*net.TCPAddr)
	dialFrom := func(src string, payload []byte) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_, _ = c.Write(payload)
	}
	accept := func() (net.Conn, string) {
		t.Helper()
		done := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err == nil {
				done <- c
			}
		}()
		select {
		case c := <-done:
			b := make([]byte, 4)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := io.ReadFull(c, b)
			return c, string(b[:n])
		case <-time.After(2 * time.Second):
			return nil, ""
		}
	}
	dialFrom("127.0.0.2", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 50000 3200\r\nGET /"))
	c, rest := accept()
	if c == nil || c.RemoteAddr().String() != "203.0.113.9:50000" || rest != "GET " {
		t.Fatalf("trusted with a header: %v %q", c, rest)
	}
	dialFrom("127.0.0.2", []byte("GET / HTTP/1.1\r\n\r\n")) // no header from a trusted peer: closed
	dialFrom("127.0.0.3", []byte("PROXY TCP4 203.0.113.9 10.0.0.1 50000 3200\r\n"))
	dialFrom("127.0.0.3", append(v2(1, 0x11, tcp4Addrs, 0), "GET "...))
	dialFrom("127.0.0.4", []byte("GET / HTTP/1.1\r\n\r\n"))
	c, rest = accept()
	if c == nil || c.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.4" || rest != "GET " {
		t.Fatalf("untrusted without a header: %v %q, want it served as it is", c, rest)
	}
	if c, _ := accept(); c != nil {
		t.Fatalf("a refused connection was handed on: %v", c.RemoteAddr())
	}
}
