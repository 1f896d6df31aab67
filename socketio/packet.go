package socketio

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// PacketType is the Socket.IO packet type, the first byte of a packet.
type PacketType byte

// Socket.IO packet types. ConnectError is called ERROR in protocol v4.
const (
	Connect PacketType = iota
	Disconnect
	Event
	Ack
	ConnectError
	BinaryEvent
	BinaryAck
)

var typeNames = [...]string{
	Connect:      "CONNECT",
	Disconnect:   "DISCONNECT",
	Event:        "EVENT",
	Ack:          "ACK",
	ConnectError: "CONNECT_ERROR",
	BinaryEvent:  "BINARY_EVENT",
	BinaryAck:    "BINARY_ACK",
}

// String returns the protocol name of t, e.g. "BINARY_EVENT".
func (t PacketType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

// IsBinary reports whether packets of type t announce binary attachments.
func (t PacketType) IsBinary() bool { return t == BinaryEvent || t == BinaryAck }

// Packet is one Socket.IO packet.
//
// Data is the raw JSON payload (nil when absent), kept raw so echoes are
// byte-exact. ID is the ack id, or -1 when absent. Namespace is "/" when absent
// on the wire. Packets returned by Decode alias the decoded bytes in Data.
type Packet struct {
	Type        PacketType
	Namespace   string
	Query       string // protocol v4 CONNECT namespace query: "token=x" from "0/admin?token=x,"
	ID          int64  // -1 = no ack id
	Data        []byte // raw JSON or nil
	Attachments int    // binary attachments announced (BINARY_EVENT/BINARY_ACK only)
}

// ErrInvalidPacket is wrapped by every error about a malformed packet, its
// arguments or its attachments. Node closes the engine connection on one.
var ErrInvalidPacket = errors.New("socketio: invalid packet")

// DefaultMaxAttachments is Node's limit on attachments per packet.
const DefaultMaxAttachments = 10

// MaxAckID is the largest ack id accepted: the largest integer a JavaScript
// peer holds exactly, so an ack echoed by Node matches the id we sent.
const MaxAckID = 1<<53 - 1

// DecodeOptions tunes Decode. The zero value is Node's behaviour.
type DecodeOptions struct {
	MaxAttachments int // <= 0 means DefaultMaxAttachments
}

func (o DecodeOptions) maxAttachments() int {
	if o.MaxAttachments <= 0 {
		return DefaultMaxAttachments
	}
	return o.MaxAttachments
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidPacket}, args...)...)
}

// Decode parses one packet in text form with the default options.
func Decode(text []byte) (Packet, error) { return DecodeOptions{}.Decode(text) }

// Decode parses the text form <type>[<nAttach>-][<nsp>,][<ackId>][JSON],
// validating it like the reference parser. The returned Data aliases text.
//
// Departures from the reference parser, all stricter: the attachment count
// must be one or more digits; EVENT and BINARY_EVENT must carry a payload
// (Node would dispatch an event with no name); ack ids above MaxAckID are
// refused; placeholder indexes must be integers.
func (o DecodeOptions) Decode(text []byte) (Packet, error) {
	p := Packet{Namespace: "/", ID: -1}
	if len(text) == 0 {
		return p, invalid("empty packet")
	}
	if text[0] < '0' || text[0] > '6' {
		return p, invalid("unknown packet type %q", text[0])
	}
	p.Type = PacketType(text[0] - '0')
	i := 1
	var err error
	if p.Type.IsBinary() {
		if p.Attachments, i, err = o.readAttachments(text, i); err != nil {
			return p, err
		}
	}
	i = p.readNamespace(text, i)
	if p.ID, i, err = readAckID(text, i); err != nil {
		return p, err
	}
	if i < len(text) {
		p.Data = text[i:len(text):len(text)]
	}
	if err := checkPayload(p); err != nil {
		return p, err
	}
	return p, nil
}

// readAttachments reads "<digits>-" at text[i:].
func (o DecodeOptions) readAttachments(text []byte, i int) (n, next int, err error) {
	max := o.maxAttachments()
	start := i
	for ; i < len(text) && isDigit(text[i]); i++ {
		d := int(text[i] - '0')
		if n > (max-d)/10 {
			return 0, i, invalid("too many attachments (max %d)", max)
		}
		n = n*10 + d
	}
	if i == start || i == len(text) || text[i] != '-' {
		return 0, i, invalid("illegal attachments")
	}
	return n, i + 1, nil
}

// readNamespace reads a namespace at text[i:] if one starts there: from '/'
// to the next ',' (consumed) or the end. A protocol v4 CONNECT query is split
// off at the first '?'.
func (p *Packet) readNamespace(text []byte, i int) int {
	if i >= len(text) || text[i] != '/' {
		return i
	}
	end := bytes.IndexByte(text[i:], ',')
	next := i + end + 1
	if end < 0 {
		end, next = len(text)-i, len(text)
	}
	nsp := text[i : i+end]
	if p.Type == Connect {
		if q := bytes.IndexByte(nsp, '?'); q >= 0 {
			p.Query = string(nsp[q+1:])
			nsp = nsp[:q]
		}
	}
	if len(nsp) == 1 {
		p.Namespace = "/" // no allocation for the common explicit root
	} else {
		p.Namespace = string(nsp)
	}
	return next
}

// readAckID reads an optional run of digits at text[i:].
func readAckID(text []byte, i int) (id int64, next int, err error) {
	if i >= len(text) || !isDigit(text[i]) {
		return -1, i, nil
	}
	for ; i < len(text) && isDigit(text[i]); i++ {
		d := int64(text[i] - '0')
		if id > (MaxAckID-d)/10 {
			return -1, i, invalid("ack id too large")
		}
		id = id*10 + d
	}
	return id, i, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Append appends the text form of p to dst, as the reference encoder writes
// it: the namespace (followed by ',') only when it is not "/" or a Query is
// set, the attachment count only for binary types. Append does not validate
// p; Data must be valid JSON that does not start with a digit.
func Append(dst []byte, p Packet) []byte {
	dst = append(dst, '0'+byte(p.Type))
	if p.Type.IsBinary() {
		dst = strconv.AppendInt(dst, int64(p.Attachments), 10)
		dst = append(dst, '-')
	}
	if (p.Namespace != "" && p.Namespace != "/") || p.Query != "" {
		if p.Namespace == "" {
			dst = append(dst, '/')
		}
		dst = append(dst, p.Namespace...)
		if p.Query != "" {
			dst = append(dst, '?')
			dst = append(dst, p.Query...)
		}
		dst = append(dst, ',')
	}
	if p.ID >= 0 {
		dst = strconv.AppendInt(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}
