package p2p

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Verdict is a MessageValidator's decision on a channel message.
type Verdict int

const (
	// Accept delivers the message and forwards it.
	Accept Verdict = iota
	// Ignore drops it without blaming the peer that sent it, for messages
	// that are well formed but of no use here (an epoch already past).
	Ignore
	// Reject drops it and lowers the score of the peer that sent it, for
	// messages no honest peer forwards (garbage, another group's).
	Reject
)

// MessageValidator judges a channel message before it is delivered or
// forwarded. from is the peer that handed it over, not its author: channel
// messages carry no author. It runs inline, one message at a time in the
// order they arrived (so a sender's messages are delivered in the order it
// sent them), and must return promptly: a slow verdict delays every
// channel's messages, ctx ends after Config.ValidateTimeout, and a verdict
// returned after that counts as Ignore.
type MessageValidator func(ctx context.Context, from peer.ID, data []byte) Verdict

// Message is a channel message delivered to the host.
type Message struct {
	Data  []byte
	From  peer.ID // the peer that forwarded it; the host's own ID for Local
	Local bool    // published by this host
}

// subscriptionBuffer is how many delivered messages wait for Next before
// gossipsub drops them for this host: a burst of a busy channel must fit.
const subscriptionBuffer = 4096

// topicPrefix names channel topics: /spacepanda/ch/<hex(sha256(channel))>.
const topicPrefix = "/spacepanda/ch/"

// TopicName is the gossipsub topic of a channel. Hashing the channel ID
// keeps topic names short and of one shape whatever the ID.
func TopicName(channel []byte) string {
	sum := sha256.Sum256(channel)
	return topicPrefix + hex.EncodeToString(sum[:])
}

// messageID names a message by its content and topic. Without authors or
// sequence numbers there is nothing else to name it by, and it makes the
// same message, relayed by many peers or published twice, one message.
func messageID(m *pb.Message) string {
	h := sha256.New()
	h.Write([]byte(m.GetTopic()))
	h.Write([]byte{0})
	h.Write(m.GetData())
	return string(h.Sum(nil))
}

func (h *Host) startPubSub() error {
	params, thresholds := peerScoreParams()
	// The gate's shut-out peers, for as long as the gate holds them.
	blacklist, err := pubsub.NewTimeCachedBlacklist(h.cfg.GateDuration)
	if err != nil {
		return fmt.Errorf("p2p: gossipsub blacklist: %w", err)
	}
	opts := []pubsub.Option{
		// MLS authenticates every message; a pubsub signature would name the
		// sending peer to every relay and cost CPU on each delivery.
		pubsub.WithNoAuthor(),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithMessageIdFn(messageID),
		// A member's own messages go to every topic peer, not only its
		// mesh: chat messages are small and rare, the first hop then
		// reaches everyone it is connected to, and a mesh of Sybils
		// cannot eclipse what the member says.
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(h.setScores), h.cfg.ScoreInterval),
		// Room for the framing of an RPC around the largest message.
		pubsub.WithMaxMessageSize(h.cfg.MaxMessageSize + 64<<10),
		// Chat is quiet but bursty (a catch-up, a busy minute); the default
		// queues of 32 drop messages in a burst of a few hundred.
		pubsub.WithPeerOutboundQueueSize(1024),
		pubsub.WithValidateQueueSize(1024),
		// One worker validating inline (see join) hands messages on in the
		// order they arrived; pubsub's default, a goroutine per message,
		// reorders a burst, and a member reads each sender in order.
		pubsub.WithValidateWorkers(1),
		pubsub.WithLogger(h.log),
		pubsub.WithBlacklist(blacklist),
	}
	if h.ps, err = pubsub.NewGossipSub(h.ctx, h.host, opts...); err != nil {
		return fmt.Errorf("p2p: starting gossipsub: %w", err)
	}
	return nil
}

// peerScoreParams tunes gossipsub's peer score for chat topics. Their
// traffic is low and uneven, so the mesh delivery-rate penalty (P3), which
// punishes mesh peers that deliver fewer messages than expected, is off:
// in a quiet channel honest peers deliver nothing for hours. What remains
// rewards time in the mesh and first deliveries a little, and punishes
// invalid messages hard, so a few rejected messages push a peer below the
// gossip, publish and graylist thresholds in turn.
func peerScoreParams() (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	params := &pubsub.PeerScoreParams{
		Topics:                      map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:               20,
		AppSpecificScore:            func(peer.ID) float64 { return 0 },
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    -5,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: loopback,
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		// Remember a misbehaving peer's score for an hour after it leaves,
		// so that reconnecting does not wipe it.
		RetainScore: time.Hour,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             -10,
		PublishThreshold:            -50,
		GraylistThreshold:           -80,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 1,
	}
	return params, thresholds
}

// loopback is the IP colocation whitelist: every test host shares it.
var loopback = []*net.IPNet{
	{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)},
	{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
}

// channelScoreParams are the per-topic parameters of a channel topic.
func channelScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight: 1,
		// P1: up to +5 after an hour in the mesh.
		TimeInMeshWeight:  5.0 / 3600,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     3600,
		// P2: +1 per first delivery, up to +10, fading over an hour.
		FirstMessageDeliveriesWeight: 1,
		FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
		FirstMessageDeliveriesCap:    10,
		// P3 and P3b off: see peerScoreParams.
		MeshMessageDeliveriesDecay: pubsub.ScoreParameterDecay(time.Hour),
		// P4: -10 times the square of the invalid messages, fading over an
		// hour: 1 invalid message is -10, 3 are -90.
		InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(time.Hour),
	}
}

// Channel is the host's membership of one channel's topic.
type Channel struct {
	h     *Host
	name  string
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	once  sync.Once

	closed atomic.Bool
}

// JoinChannel subscribes to the channel's topic. validate runs on every
// message, received or published, after p2p's own size check; nil accepts
// every message within the size limit.
func (h *Host) JoinChannel(channel []byte, validate MessageValidator) (*Channel, error) {
	name := TopicName(channel)
	h.mu.Lock()
	if _, ok := h.channels[name]; ok {
		h.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrChannelJoined, name)
	}
	c := &Channel{h: h, name: name}
	h.channels[name] = c
	h.mu.Unlock()

	if err := c.join(validate); err != nil {
		c.Close()
		return nil, err
	}
	h.log.Info("joined channel", "topic", name)
	return c, nil
}

func (c *Channel) join(validate MessageValidator) error {
	h := c.h
	limit := h.cfg.MaxMessageSize
	self := h.host.ID()
	judge := func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if len(m.Data) > limit {
			return pubsub.ValidationReject
		}
		if validate == nil {
			return pubsub.ValidationAccept
		}
		verdict := validate(ctx, from, m.Data)
		if ctx.Err() != nil {
			return pubsub.ValidationIgnore
		}
		switch verdict {
		case Accept:
			return pubsub.ValidationAccept
		case Ignore:
			return pubsub.ValidationIgnore
		default:
			return pubsub.ValidationReject
		}
	}
	v := func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if from == self {
			return judge(ctx, from, m)
		}
		// A shut-out peer's messages, still in flight, cost no validator
		// run.
		if h.gate.gated(from) {
			return pubsub.ValidationReject
		}
		res := judge(ctx, from, m)
		if res == pubsub.ValidationReject && h.gate.reject(from) {
			h.shutOut(from)
		}
		return res
	}
	if err := h.ps.RegisterTopicValidator(c.name, pubsub.ValidatorEx(v), pubsub.WithValidatorInline(true), pubsub.WithValidatorTimeout(h.cfg.ValidateTimeout)); err != nil {
		return fmt.Errorf("p2p: channel %s: validator: %w", c.name, err)
	}
	var err error
	if c.topic, err = h.ps.Join(c.name); err != nil {
		return fmt.Errorf("p2p: joining %s: %w", c.name, err)
	}
	if err := c.topic.SetScoreParams(channelScoreParams()); err != nil {
		return fmt.Errorf("p2p: channel %s: score parameters: %w", c.name, err)
	}
	if c.sub, err = c.topic.Subscribe(pubsub.WithBufferSize(subscriptionBuffer)); err != nil {
		return fmt.Errorf("p2p: subscribing to %s: %w", c.name, err)
	}
	return nil
}

// Topic is the channel's gossipsub topic name.
func (c *Channel) Topic() string { return c.name }

// Publish sends data to the channel. A topic just joined may have no mesh
// peer yet, and a message sent then reaches nobody; so Publish first waits
// up to PublishWait for one, then sends regardless (a channel whose other
// members are all away is caught up through Sync). Messages are named by
// content, so publishing the same bytes again is harmless and does nothing
// while the first copy is remembered (two minutes).
func (c *Channel) Publish(ctx context.Context, data []byte) error {
	if len(data) > c.h.cfg.MaxMessageSize {
		return fmt.Errorf("%w: %w: %d bytes, limit %d", ErrMessageRejected, ErrTooLarge, len(data), c.h.cfg.MaxMessageSize)
	}
	wait, cancel := context.WithTimeout(ctx, c.h.cfg.PublishWait)
	err := c.topic.Publish(wait, data, pubsub.WithReadiness(pubsub.MinTopicSize(1)))
	cancel()
	if err != nil && wait.Err() != nil && ctx.Err() == nil {
		err = c.topic.Publish(ctx, data)
	}
	var verr pubsub.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &verr):
		return fmt.Errorf("%w: %s", ErrMessageRejected, verr.Reason)
	case errors.Is(err, pubsub.ErrTopicClosed):
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("p2p: publishing to %s: %w", c.name, err)
}

// Next blocks until the next accepted message of the channel, the host's
// own included, or until ctx ends or the channel closes (ErrClosed).
func (c *Channel) Next(ctx context.Context) (*Message, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	m, err := c.sub.Next(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrClosed, err)
	}
	self := c.h.host.ID()
	return &Message{Data: m.Data, From: m.ReceivedFrom, Local: m.ReceivedFrom == self}, nil
}

// Peers are the peers known to be in the channel's topic.
func (c *Channel) Peers() []peer.ID { return c.topic.ListPeers() }

// Close leaves the channel. It is idempotent.
func (c *Channel) Close() error {
	c.once.Do(func() {
		h := c.h
		c.closed.Store(true)
		if c.sub != nil {
			c.sub.Cancel()
		}
		if c.topic != nil {
			// The subscription is cancelled asynchronously; the topic
			// closes once gossipsub has seen that.
			for range 50 {
				if c.topic.Close() == nil || h.ctx.Err() != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		_ = h.ps.UnregisterTopicValidator(c.name)
		h.mu.Lock()
		delete(h.channels, c.name)
		h.mu.Unlock()
	})
	return nil
}
