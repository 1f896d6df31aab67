// Package proxyproto reads the PROXY protocol header (v1 text, v2 binary) that an L4 balancer puts
// at the start of a connection to tell the client's address (HAProxy's send-proxy / send-proxy-v2, AWS
// NLB, Google's TCP proxy). The parser is strict and bounded: a v1 header is at most 107 bytes, a v2
// header at most MaxV2 bytes, and anything else is refused before the connection is served.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
)

// Header is what a PROXY header says about the connection.
type Header struct {
	// Source is the client's address. Unset (not Valid) for a v2 LOCAL header (the balancer's own
	// health check) or a v1 UNKNOWN one: the connection's peer is then the client.
	Source netip.AddrPort
}

// Errors of Parse.
var (
	// ErrNeedMore means the bytes end inside a header: read more (up to MaxV2 in all).
	ErrNeedMore = errors.New("proxyproto: header incomplete")
	// ErrNotProxy means the bytes do not start with a PROXY header.
	ErrNotProxy = errors.New("proxyproto: no PROXY protocol header")
	// ErrBadHeader means a header that breaks the protocol's rules (or sidpin's bounds).
	ErrBadHeader = errors.New("proxyproto: malformed PROXY protocol header")
)

// maxV1 is the longest v1 header, CRLF included (the specification's bound).
const maxV1 = 107

// MaxV2 bounds a v2 header with its TLVs (the balancer's extensions, which sidpin skips).
const MaxV2 = 16 + 2048

// v2Sig starts every v2 header.
var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// Parse reads the header at the start of b and returns it with its length.
func Parse(b []byte) (Header, int, error) {
	switch {
	case len(b) == 0:
		return Header{}, 0, ErrNeedMore
	case b[0] == 'P':
		return parseV1(b)
	case b[0] == '\r':
		return parseV2(b)
	}
	return Header{}, 0, ErrNotProxy
}

// Starts reports whether b (at least its first bytes) may be the start of a PROXY header.
func Starts(b []byte) bool {
	n := min(len(b), len(v2Sig))
	if bytes.Equal(b[:n], v2Sig[:n]) {
		return true
	}
	n = min(len(b), 6)
	return string(b[:n]) == "PROXY "[:n]
}

// parseV1 reads "PROXY TCP4|TCP6 src dst sport dport\r\n" or "PROXY UNKNOWN ...\r\n".
func parseV1(b []byte) (Header, int, error) {
	if !Starts(b) {
		return Header{}, 0, ErrNotProxy
	}
	end := bytes.Index(b[:min(len(b), maxV1)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= maxV1 {
			return Header{}, 0, ErrBadHeader
		}
		return Header{}, 0, ErrNeedMore
	}
	n := end + 2
	f := bytes.Split(b[:end], []byte(" "))
	if len(f) >= 2 && string(f[1]) == "UNKNOWN" {
		return Header{}, n, nil
	}
	if len(f) != 6 || (string(f[1]) != "TCP4" && string(f[1]) != "TCP6") {
		return Header{}, 0, ErrBadHeader
	}
	src, err1 := netip.ParseAddr(string(f[2]))
	dst, err2 := netip.ParseAddr(string(f[3]))
	sport, err3 := parsePort(f[4])
	_, err4 := parsePort(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil || src.Zone() != "" || dst.Zone() != "" ||
		src.Is4() != (string(f[1]) == "TCP4") || dst.Is4() != src.Is4() {
		return Header{}, 0, ErrBadHeader
	}
	return Header{Source: netip.AddrPortFrom(src, sport)}, n, nil
}

// parsePort reads a decimal port, 0-65535, without a sign or leading zeros.
func parsePort(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, ErrBadHeader
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrBadHeader
		}
	}
	v, err := strconv.ParseUint(string(b), 10, 16)
	return uint16(v), err
}

// parseV2 reads the binary header: signature, version and command, family, length, addresses, TLVs.
func parseV2(b []byte) (Header, int, error) {
	if !Starts(b) {
		return Header{}, 0, ErrNotProxy
	}
	if len(b) < 16 {
		return Header{}, 0, ErrNeedMore
	}
	verCmd, fam := b[12], b[13]
	length := int(binary.BigEndian.Uint16(b[14:16]))
	n := 16 + length
	switch {
	case verCmd>>4 != 2 || verCmd&0x0f > 1:
		return Header{}, 0, ErrBadHeader
	case n > MaxV2:
		return Header{}, 0, ErrBadHeader
	case len(b) < n:
		return Header{}, 0, ErrNeedMore
	}
	if verCmd&0x0f == 0 { // LOCAL: the balancer speaking for itself
		return Header{}, n, nil
	}
	addrs := b[16:n]
	switch fam {
	case 0x11: // TCP over IPv4
		if len(addrs) < 12 {
			return Header{}, 0, ErrBadHeader
		}
		src := netip.AddrFrom4([4]byte(addrs[0:4]))
		return Header{Source: netip.AddrPortFrom(src, binary.BigEndian.Uint16(addrs[8:10]))}, n, nil
	case 0x21: // TCP over IPv6
		if len(addrs) < 36 {
			return Header{}, 0, ErrBadHeader
		}
		src := netip.AddrFrom16([16]byte(addrs[0:16])).Unmap()
		return Header{Source: netip.AddrPortFrom(src, binary.BigEndian.Uint16(addrs[32:34]))}, n, nil
	case 0x00: // UNSPEC: the peer is the client
		return Header{}, n, nil
	}
	return Header{}, 0, ErrBadHeader // UDP or UNIX sockets: not a client of an HTTP listener
}
