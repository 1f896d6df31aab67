package chatnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisFanout carries chat broadcasts between nodes over one Redis pub/sub channel. Every node
// delivers its own broadcasts directly and skips them when they come back from Redis.
//
// Redis being down never stops the chat: the node serves its own clients meanwhile, a background loop
// keeps subscribing with backoff, and broadcasts published while Redis is unreachable reach this node
// only.
type RedisFanout struct {
	client  redis.UniversalClient
	channel string
	origin  string // unique per process, so two nodes with the same name still hear each other
	chat    *Chat
	log     *slog.Logger

	subscribed atomic.Bool
	subFails   *failureLog
	pubFails   *failureLog

	cancel  context.CancelFunc
	done    chan struct{} // closed when the subscribe loop has returned
	mu      sync.Mutex
	stopped bool
	pubsub  *redis.PubSub // the live subscription, which Close closes to end a blocked read
}

// envelope is a broadcast on the wire; []byte fields travel as base64 in JSON.
type envelope struct {
	Origin      string   `json:"o"`
	Room        string   `json:"r,omitempty"`
	Packet      []byte   `json:"p"`
	Attachments [][]byte `json:"a,omitempty"`
}

const (
	publishTimeout = time.Second
	// subscribeTimeout bounds the wait for Redis to confirm a SUBSCRIBE.
	subscribeTimeout = 2 * time.Second
	// healthInterval: an idle subscription is pinged this often, and is dead when the ping gets no
	// answer by the next check (a Redis host that vanished without closing the connection).
	healthInterval = 2 * time.Second
	// Retry delays of the subscription: 100 ms doubling up to 5 s, with jitter.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
	// failureLogEvery is the least time between two log lines of the same kind of failure.
	failureLogEvery = 5 * time.Second
)

// StartRedisFanout subscribes to channel in the background and delivers what other nodes publish to
// chat. It waits (within ctx) for the first attempt: when Redis is up it returns subscribed, so no
// broadcast published after it is missed; when Redis is down it returns anyway and keeps retrying.
func StartRedisFanout(ctx context.Context, client redis.UniversalClient, channel string, chat *Chat, log *slog.Logger) *RedisFanout {
	f := &RedisFanout{
		client: client, channel: channel, origin: newSID(), chat: chat, log: log,
		subFails: newFailureLog(log, "chat fan-out: redis unreachable; this node's chat works alone until it is back", failureLogEvery),
		pubFails: newFailureLog(log, "chat fan-out: cannot publish to redis; messages reach this node only", failureLogEvery),
		done:     make(chan struct{}),
	}
	runCtx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	firstTry := make(chan struct{})
	go f.run(runCtx, firstTry)
	select {
	case <-firstTry:
	case <-ctx.Done():
	}
	return f
}

// Publish sends a broadcast to the other nodes.
func (f *RedisFanout) Publish(b Broadcast) error {
	data, err := json.Marshal(envelope{Origin: f.origin, Room: b.Room, Packet: b.Packet, Attachments: b.Attachments})
	if err != nil {
		return fmt.Errorf("encode chat broadcast: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := f.client.Publish(ctx, f.channel, data).Err(); err != nil {
		err = fmt.Errorf("publish to redis channel %q: %w", f.channel, err)
		f.pubFails.failed(err, time.Now())
		return err
	}
	if down, ok := f.pubFails.recovered(time.Now()); ok {
		f.log.Info("chat fan-out: publishing to redis again", "failed_for", down)
	}
	return nil
}

// Close ends the subscription and its retries.
func (f *RedisFanout) Close() error {
	f.mu.Lock()
	f.stopped = true
	ps := f.pubsub
	f.mu.Unlock()
	f.cancel()
	if ps != nil {
		_ = ps.Close() // ends a read blocked on it
	}
	<-f.done
	return nil
}

// run keeps the subscription up until ctx ends: subscribe, receive until the connection fails, wait a
// growing delay, again. firstTry is closed once the first attempt has succeeded or failed.
func (f *RedisFanout) run(ctx context.Context, firstTry chan<- struct{}) {
	defer close(f.done)
	var once sync.Once
	tried := func() { once.Do(func() { close(firstTry) }) }
	defer tried()
	delay := backoff{min: retryMin, max: retryMax}
	for ctx.Err() == nil {
		err := f.subscribeAndReceive(ctx, tried, &delay)
		if ctx.Err() != nil {
			return
		}
		f.subscribed.Store(false)
		f.subFails.failed(err, time.Now())
		select {
		case <-time.After(delay.next()):
		case <-ctx.Done():
		}
	}
}

// subscribeAndReceive runs one subscription from SUBSCRIBE to its failure.
func (f *RedisFanout) subscribeAndReceive(ctx context.Context, tried func(), delay *backoff) error {
	ps, err := f.subscribe(ctx)
	if err != nil {
		tried()
		return err
	}
	defer ps.Close()
	f.subscribed.Store(true)
	tried()
	if down, ok := f.subFails.recovered(time.Now()); ok {
		f.log.Info("chat fan-out: subscribed to redis again", "channel", f.channel, "failed_for", down)
	} else {
		f.log.Info("chat fan-out: subscribed to redis", "channel", f.channel)
	}
	start := time.Now()
	err = f.receive(ctx, ps)
	if time.Since(start) >= retryMax {
		// Start again from the shortest delay only after a connection that held: one that Redis drops
		// at once must not turn the retries into a tight loop.
		delay.reset()
	}
	return err
}

// subscribe opens a subscription and waits for Redis to confirm it.
func (f *RedisFanout) subscribe(ctx context.Context) (*redis.PubSub, error) {
	ps := f.client.Subscribe(ctx) // no channel yet, so no connection: a dial error shows in confirm
	if !f.track(ps) {
		_ = ps.Close()
		return nil, context.Canceled
	}
	if err := confirmSubscribe(ctx, ps, f.channel); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("subscribe to redis channel %q: %w", f.channel, err)
	}
	return ps, nil
}

// confirmSubscribe sends SUBSCRIBE and waits for Redis's confirmation.
func confirmSubscribe(ctx context.Context, ps *redis.PubSub, channel string) error {
	if err := ps.Subscribe(ctx, channel); err != nil {
		return err
	}
	msg, err := ps.ReceiveTimeout(ctx, subscribeTimeout)
	if err != nil {
		return err
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		return fmt.Errorf("got %T instead of the confirmation", msg)
	}
	return nil
}

// track makes ps the subscription Close closes; false when Close has already run.
func (f *RedisFanout) track(ps *redis.PubSub) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.pubsub = ps
	return true
}

// receive delivers other nodes' broadcasts until the subscription fails.
func (f *RedisFanout) receive(ctx context.Context, ps *redis.PubSub) error {
	pinged := false // a health-check ping is unanswered
	for {
		msg, err := ps.ReceiveTimeout(ctx, healthInterval)
		switch {
		case err == nil:
			pinged = false
			f.handle(msg)
		case !isTimeout(err):
			return fmt.Errorf("receive from redis channel %q: %w", f.channel, err)
		case pinged:
			return fmt.Errorf("redis did not answer a ping on channel %q within %s", f.channel, healthInterval)
		default:
			if err := ps.Ping(ctx); err != nil {
				return fmt.Errorf("ping redis on channel %q: %w", f.channel, err)
			}
			pinged = true
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// handle delivers a broadcast of another node; confirmations and pongs need nothing.
func (f *RedisFanout) handle(msg any) {
	m, ok := msg.(*redis.Message)
	if !ok {
		return
	}
	var env envelope
	if err := json.Unmarshal([]byte(m.Payload), &env); err != nil {
		f.log.Warn("ignoring a malformed chat broadcast from redis", "err", err)
		return
	}
	if env.Origin == f.origin {
		return
	}
	f.chat.Deliver(Broadcast{Room: env.Room, Packet: env.Packet, Attachments: env.Attachments})
}
