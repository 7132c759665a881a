package session

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// notifyingSource is a Source that reports changes: Next returns a changed
// frame when the test marked one, and counts its calls.
type notifyingSource struct {
	changes chan struct{}
	blank   bool // no picture until the first change
	mu      sync.Mutex
	dirty   bool
	nexts   int
}

func (s *notifyingSource) Changes() <-chan struct{} { return s.changes }

func (s *notifyingSource) change() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
	s.changes <- struct{}{}
}

func (s *notifyingSource) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nexts
}

func (s *notifyingSource) Next() (Frame, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nexts++
	f := Frame{Width: 16, Height: 16, Stride: 64, Pix: make([]byte, 16*64), Changed: s.dirty || (s.nexts == 1 && !s.blank), Monitor: AllMonitors}
	s.dirty = false
	return f, nil
}

func (s *notifyingSource) Monitors() ([]Monitor, error) {
	return []Monitor{{Width: 16, Height: 16}}, nil
}
func (s *notifyingSource) Select(int) error { return nil }
func (s *notifyingSource) Close() error     { return nil }

// encoded records what the stream encoded.
type encoded struct{ key bool }

type recordingEncoder struct {
	out   chan encoded
	force bool
	kbps  chan int
}

func (e *recordingEncoder) Encode([]byte, int, time.Duration) ([]byte, bool, error) {
	key := e.force
	e.force = false
	e.out <- encoded{key: key}
	return []byte{0x10, 0, 0}, key, nil
}
func (e *recordingEncoder) ForceKeyframe() { e.force = true }
func (e *recordingEncoder) SetBitrate(kbps int) error {
	if e.kbps != nil {
		e.kbps <- kbps
	}
	return nil
}
func (e *recordingEncoder) Close() error { return nil }

// TestStreamCapturesOnChange checks the stream loop with a source that
// reports changes: it captures only when told (no polling of an idle
// screen), encodes each change, and answers a key-frame request on an
// idle screen with the last picture.
func TestStreamCapturesOnChange(t *testing.T) {
	out := make(chan encoded, 16)
	m := NewManager(Config{Logger: slog.New(slog.DiscardHandler), NewEncoder: func(w, h int) (Encoder, error) {
		return &recordingEncoder{out: out}, nil
	}})
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", "test")
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{m: m, log: m.log, id: "s", keyReq: make(chan struct{}, 1), bitrate: make(chan int, 4),
		monitorReq: make(chan int, 1), connected: make(chan struct{}), track: track, ended: make(chan string, 1)}
	close(s.connected)
	src := &notifyingSource{changes: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.stream(ctx, src) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stream: %v", err)
		}
	}()
	next := func(what string) encoded {
		t.Helper()
		select {
		case e := <-out:
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing encoded for %s", what)
		}
		return encoded{}
	}

	if e := next("the start"); !e.key {
		t.Error("the first frame is not a key frame")
	}
	// Idle: no change reported, no capture. (Several frame intervals.)
	idle := src.calls()
	time.Sleep(200 * time.Millisecond)
	if n := src.calls(); n != idle {
		t.Errorf("the idle screen was captured %d more times without a change reported", n-idle)
	}
	src.change()
	if e := next("a reported change"); e.key {
		t.Error("a change was sent as a key frame")
	}
	s.requestKeyframe()
	if e := next("a key-frame request on an idle screen"); !e.key {
		t.Error("a key-frame request gave a delta frame")
	}
	select {
	case e := <-out:
		t.Errorf("an extra frame was encoded (%+v)", e)
	default:
	}
}

// TestStreamKeepsTheLinkEstimate checks that a bitrate estimate that
// arrives before the encoder exists is applied when it is made.
func TestStreamKeepsTheLinkEstimate(t *testing.T) {
	out, kbps := make(chan encoded, 16), make(chan int, 4)
	m := NewManager(Config{Logger: slog.New(slog.DiscardHandler), NewEncoder: func(w, h int) (Encoder, error) {
		return &recordingEncoder{out: out, kbps: kbps}, nil
	}})
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "screen", "test")
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{m: m, log: m.log, id: "s", keyReq: make(chan struct{}, 1), bitrate: make(chan int, 4),
		monitorReq: make(chan int, 1), connected: make(chan struct{}), track: track, ended: make(chan string, 1)}
	s.bitrate <- 3000 // a REMB before the stream starts
	close(s.connected)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	src := &notifyingSource{changes: make(chan struct{}, 1), blank: true}
	go func() { done <- s.stream(ctx, src) }()
	defer func() { cancel(); <-done }()
	// The stream has taken the estimate and looked at the (blank) screen,
	// with no encoder yet; then the first picture comes.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.bitrate) > 0 || src.calls() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not start")
		}
		time.Sleep(time.Millisecond)
	}
	src.change()
	select {
	case got := <-kbps:
		if got != 2700 {
			t.Errorf("encoder set to %d kbit/s, want 90 %% of the 3000 estimate", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the estimate that came before the encoder was never applied")
	}
}
