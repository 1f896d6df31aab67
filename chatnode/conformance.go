package chatnode

import (
	"encoding/json"

	"github.com/sidpin/sidpin/engineio"
)

// echoEngine is the Engine.IO endpoint of the official protocol test suite: every message comes back.
type echoEngine struct{}

func (echoEngine) OnOpen(*Session)          {}
func (echoEngine) OnClose(*Session, string) {}
func (echoEngine) OnMessage(s *Session, p engineio.Packet) {
	_ = s.Send(p)
}

// conformanceNamespace is what the Socket.IO protocol test suite expects of "/" and "/custom": the
// handshake auth comes back as "auth", "message" comes back as "message-back", and
// "message-with-ack" is acknowledged with its own arguments.
type conformanceNamespace struct{}

func (conformanceNamespace) Authorize(json.RawMessage) error { return nil }

func (conformanceNamespace) OnConnect(s *Socket, auth json.RawMessage) {
	if len(auth) == 0 {
		auth = json.RawMessage("{}")
	}
	_ = s.Emit("auth", auth)
}

func (conformanceNamespace) OnDisconnect(*Socket, string) {}

func (conformanceNamespace) OnEvent(s *Socket, ev *Event) {
	switch ev.Name {
	case "message":
		_ = s.EmitRaw(namedArgsArray("message-back", ev), ev.Attachments, nil)
	case "message-with-ack":
		_ = s.AckRaw(ev, argsArray(ev), ev.Attachments)
	case "emit-with-ack":
		// Ask the client for an ack with the same arguments, then send what it answered.
		_ = s.EmitRaw(namedArgsArray("emit-with-ack", ev), ev.Attachments, func(ack *Event) {
			_ = s.EmitRaw(namedArgsArray("emit-with-ack", ack), ack.Attachments, nil)
		})
	}
}
