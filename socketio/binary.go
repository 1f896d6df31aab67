package socketio

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Arg is one event or ack argument given to EncodeEvent or EncodeAck:
//   - json.RawMessage: written verbatim (it must be valid JSON);
//   - []byte (even nil) or a named []byte type without MarshalJSON: binary,
//     sent as an attachment behind a placeholder;
//   - anything else encoding/json can marshal, written without HTML escaping.
//     Slices, arrays, maps with string keys, pointers and interfaces are
//     walked so []byte found inside them becomes a placeholder too; map keys
//     are sorted, as encoding/json does. Struct fields and values with their
//     own MarshalJSON/MarshalText go to encoding/json unchanged ([]byte there
//     becomes base64).
type Arg = any

// maxDepth bounds the walk of nested arguments (and so catches cycles), like
// encoding/json's own limit.
const maxDepth = 1000

// EncodeEvent builds an EVENT, or a BINARY_EVENT when the arguments hold
// []byte, in namespace nsp ("" means "/"; otherwise it starts with '/' and has
// no ','), with ack id ackID (-1 for none). The event name may not be reserved.
// It returns the attachments to send after the packet, in placeholder order.
func EncodeEvent(nsp string, ackID int64, name string, args ...Arg) (Packet, [][]byte, error) {
	if IsReservedEvent(name) {
		return Packet{}, nil, invalid("reserved event name %q", name)
	}
	if ackID > MaxAckID {
		return Packet{}, nil, invalid("ack id too large")
	}
	e := newArgEncoder()
	if err := e.encode(name, 0); err != nil {
		return Packet{}, nil, err
	}
	return e.packet(nsp, ackID, Event, BinaryEvent, args)
}

// EncodeAck builds an ACK, or a BINARY_ACK when the arguments hold []byte,
// answering ack id ackID (>= 0) in namespace nsp ("" means "/").
func EncodeAck(nsp string, ackID int64, args ...Arg) (Packet, [][]byte, error) {
	if ackID < 0 || ackID > MaxAckID {
		return Packet{}, nil, invalid("ack id %d out of range", ackID)
	}
	return newArgEncoder().packet(nsp, ackID, Ack, BinaryAck, args)
}

// argEncoder writes a JSON array of arguments, pulling binary out as it goes.
type argEncoder struct {
	buf         bytes.Buffer
	json        *json.Encoder
	attachments [][]byte
}

func newArgEncoder() *argEncoder {
	e := &argEncoder{}
	e.buf.WriteByte('[')
	e.json = json.NewEncoder(&e.buf)
	e.json.SetEscapeHTML(false) // JSON.stringify does not escape <>&
	return e
}

// packet finishes the array with args and returns the packet, typed plain or
// binary depending on whether any attachment was found.
func (e *argEncoder) packet(nsp string, id int64, plain, binary PacketType, args []Arg) (Packet, [][]byte, error) {
	for _, a := range args {
		if e.buf.Len() > 1 {
			e.buf.WriteByte(',')
		}
		if err := e.encode(a, 0); err != nil {
			return Packet{}, nil, err
		}
	}
	e.buf.WriteByte(']')
	if nsp == "" {
		nsp = "/"
	}
	if nsp[0] != '/' || strings.IndexByte(nsp, ',') >= 0 {
		return Packet{}, nil, invalid("namespace %q must start with '/' and hold no ','", nsp)
	}
	p := Packet{Type: plain, Namespace: nsp, ID: id, Data: e.buf.Bytes()}
	if len(e.attachments) > 0 {
		p.Type, p.Attachments = binary, len(e.attachments)
	}
	return p, e.attachments, nil
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// encode writes one value.
func (e *argEncoder) encode(v any, depth int) error {
	if depth > maxDepth {
		return invalid("arguments nested too deeply")
	}
	switch v := v.(type) {
	case nil:
		e.buf.WriteString("null")
		return nil
	case json.RawMessage:
		if !json.Valid(v) {
			return invalid("json.RawMessage argument is not valid JSON")
		}
		e.buf.Write(v)
		return nil
	case []byte:
		e.placeholder(v)
		return nil
	case string, bool, int, int64, float64:
		return e.marshal(v)
	}
	return e.encodeReflect(reflect.ValueOf(v), depth)
}

// encodeReflect walks containers that may hide []byte; everything else goes to
// encoding/json.
func (e *argEncoder) encodeReflect(rv reflect.Value, depth int) error {
	t := rv.Type()
	if t.Implements(jsonMarshaler) || t.Implements(textMarshaler) {
		return e.marshal(rv.Interface())
	}
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			e.buf.WriteString("null")
			return nil
		}
		return e.encode(rv.Elem().Interface(), depth+1)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			e.placeholder(rv.Bytes()) // even nil: binary is binary, an empty attachment
			return nil
		}
		if rv.IsNil() {
			e.buf.WriteString("null") // as encoding/json writes a nil slice
			return nil
		}
		return e.encodeList(rv, depth)
	case reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return e.marshal(rv.Interface()) // [N]byte is a JSON array of numbers
		}
		return e.encodeList(rv, depth)
	case reflect.Map:
		if t.Key().Kind() == reflect.String && !t.Key().Implements(textMarshaler) {
			return e.encodeMap(rv, depth)
		}
	}
	return e.marshal(rv.Interface())
}

func (e *argEncoder) encodeList(rv reflect.Value, depth int) error {
	e.buf.WriteByte('[')
	for i := range rv.Len() {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		if err := e.encode(rv.Index(i).Interface(), depth+1); err != nil {
			return err
		}
	}
	e.buf.WriteByte(']')
	return nil
}

func (e *argEncoder) encodeMap(rv reflect.Value, depth int) error {
	if rv.IsNil() {
		e.buf.WriteString("null")
		return nil
	}
	keys := rv.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int {
		switch {
		case a.String() < b.String():
			return -1
		case a.String() > b.String():
			return 1
		}
		return 0
	})
	e.buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		if err := e.marshal(k.String()); err != nil {
			return err
		}
		e.buf.WriteByte(':')
		if err := e.encode(rv.MapIndex(k).Interface(), depth+1); err != nil {
			return err
		}
	}
	e.buf.WriteByte('}')
	return nil
}

// placeholder records an attachment and writes its placeholder.
func (e *argEncoder) placeholder(b []byte) {
	e.buf.WriteString(`{"_placeholder":true,"num":`)
	e.buf.WriteString(strconv.Itoa(len(e.attachments)))
	e.buf.WriteByte('}')
	e.attachments = append(e.attachments, b)
}

// marshal writes v with encoding/json, minus the newline Encoder adds.
func (e *argEncoder) marshal(v any) error {
	if err := e.json.Encode(v); err != nil {
		return invalid("argument: %v", err)
	}
	e.buf.Truncate(e.buf.Len() - 1)
	return nil
}

// Value is one top-level element of a binary packet's array, from
// Reconstructor.Args. Raw is always the element as received; when the element
// is a placeholder, IsBinary is set and Binary holds its attachment.
// Placeholders nested deeper stay inside Raw and index Attachments().
type Value struct {
	Raw      json.RawMessage
	Binary   []byte
	IsBinary bool
}

// Reconstructor collects the attachments that follow a BINARY_EVENT or
// BINARY_ACK. It keeps the slices given to Add without copying them.
type Reconstructor struct {
	packet      Packet
	attachments [][]byte
}

// NewReconstructor starts collecting the attachments p announces. A packet
// announcing none (or a non-binary packet) is complete at once.
func NewReconstructor(p Packet) *Reconstructor {
	n := 0
	if p.Type.IsBinary() {
		n = min(max(p.Attachments, 0), DefaultMaxAttachments)
	}
	return &Reconstructor{packet: p, attachments: make([][]byte, 0, n)}
}

// Add takes the next attachment and reports whether all have arrived. An
// attachment beyond the announced count is an error.
func (r *Reconstructor) Add(b []byte) (done bool, err error) {
	if r.Done() {
		return true, invalid("unexpected attachment (%d announced)", r.want())
	}
	r.attachments = append(r.attachments, b)
	return r.Done(), nil
}

func (r *Reconstructor) want() int {
	if !r.packet.Type.IsBinary() {
		return 0
	}
	return r.packet.Attachments
}

// Done reports whether every announced attachment has arrived.
func (r *Reconstructor) Done() bool { return len(r.attachments) >= r.want() }

// Packet returns the packet being reconstructed; its Data still holds the
// placeholders, so Append(nil, r.Packet()) followed by Attachments() echoes it
// exactly.
func (r *Reconstructor) Packet() Packet { return r.packet }

// Attachments returns the attachments received so far, in order: index i is
// placeholder num i.
func (r *Reconstructor) Attachments() [][]byte { return r.attachments }

// Args splits the packet's array into Values, resolving top-level
// placeholders (for an event, element 0 is the name). It fails until Done.
func (r *Reconstructor) Args() ([]Value, error) {
	if !r.Done() {
		return nil, invalid("%d of %d attachments received", len(r.attachments), r.want())
	}
	raws, err := Args(r.packet.Data)
	if err != nil {
		return nil, err
	}
	vals := make([]Value, len(raws))
	for i, raw := range raws {
		vals[i].Raw = raw
		if raw[0] != '{' {
			continue
		}
		_, num, ok, err := checkObject(raw, 0, len(r.attachments))
		if err != nil {
			return nil, err
		}
		if ok {
			vals[i].Binary, vals[i].IsBinary = r.attachments[num], true
		}
	}
	return vals, nil
}
