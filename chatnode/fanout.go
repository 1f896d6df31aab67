package chatnode

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisFanout carries chat broadcasts between nodes over one Redis pub/sub channel. Every node
// delivers its own broadcasts directly and skips them when they come back from Redis.
type RedisFanout struct {
	client  redis.UniversalClient
	channel string
	origin  string // unique per process, so two nodes with the same name still hear each other
	pubsub  *redis.PubSub
	log     *slog.Logger
}

// envelope is a broadcast on the wire; []byte fields travel as base64 in JSON.
type envelope struct {
	Origin      string   `json:"o"`
	Room        string   `json:"r,omitempty"`
	Packet      []byte   `json:"p"`
	Attachments [][]byte `json:"a,omitempty"`
}

const publishTimeout = time.Second

// StartRedisFanout subscribes to channel and delivers what other nodes publish to chat. It returns
// once the subscription is confirmed, so no broadcast published after it is missed.
func StartRedisFanout(ctx context.Context, client redis.UniversalClient, channel string, chat *Chat, log *slog.Logger) (*RedisFanout, error) {
	f := &RedisFanout{client: client, channel: channel, origin: newSID(), log: log}
	f.pubsub = client.Subscribe(ctx, channel)
	if _, err := f.pubsub.Receive(ctx); err != nil {
		f.pubsub.Close()
		return nil, fmt.Errorf("subscribe to redis channel %q: %w", channel, err)
	}
	go f.receive(chat)
	return f, nil
}

// Publish sends a broadcast to the other nodes.
func (f *RedisFanout) Publish(b Broadcast) error {
	data, err := json.Marshal(envelope{Origin: f.origin, Room: b.Room, Packet: b.Packet, Attachments: b.Attachments})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := f.client.Publish(ctx, f.channel, data).Err(); err != nil {
		return fmt.Errorf("publish to redis channel %q: %w", f.channel, err)
	}
	return nil
}

// Close ends the subscription.
func (f *RedisFanout) Close() error { return f.pubsub.Close() }

func (f *RedisFanout) receive(chat *Chat) {
	// go-redis resubscribes by itself after a lost connection; the channel closes with the PubSub.
	for msg := range f.pubsub.Channel() {
		var env envelope
		if err := json.Unmarshal([]byte(msg.Payload), &env); err != nil {
			f.log.Warn("ignoring a malformed chat broadcast from redis", "err", err)
			continue
		}
		if env.Origin == f.origin {
			continue
		}
		chat.Deliver(Broadcast{Room: env.Room, Packet: env.Packet, Attachments: env.Attachments})
	}
}
