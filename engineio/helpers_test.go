package engineio

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// decodeFunc is the shape shared by the payload decoders.
type decodeFunc func([]byte, func(Packet) error) error

// collect decodes body and returns deep copies of the packets, so they stay
// valid after body changes.
func collect(decode decodeFunc, body []byte) ([]Packet, error) {
	var out []Packet
	err := decode(body, func(p Packet) error {
		p.Data = append([]byte{}, p.Data...)
		out = append(out, p)
		return nil
	})
	return out, err
}

func samePackets(a, b []Packet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Binary != b[i].Binary || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func formatPackets(pkts []Packet) string {
	var sb strings.Builder
	for _, p := range pkts {
		fmt.Fprintf(&sb, "{%v %q bin=%v}", p.Type, p.Data, p.Binary)
	}
	return sb.String()
}

func text(t PacketType, data string) Packet { return Packet{Type: t, Data: []byte(data)} }

func binPacket(data ...byte) Packet { return Packet{Type: Message, Data: data, Binary: true} }

// wantErr fails unless err wraps target.
func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one wrapping %v", err, target)
	}
}

// errStop is returned from callbacks to check early exit.
var errStop = errors.New("stop")
