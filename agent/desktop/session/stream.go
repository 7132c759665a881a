package session

import (
	"context"
	"fmt"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// layoutInterval is how often the stream loop re-reads the monitor list.
const layoutInterval = 2 * time.Second

// readRTCP turns the viewer's feedback into key frames and bitrate.
func (s *Session) readRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				s.requestKeyframe()
			case *rtcp.ReceiverEstimatedMaximumBitrate:
				// Keep the newest estimate: drop a stale one when full.
				kbps := int(p.Bitrate / 1000)
				for {
					select {
					case s.bitrate <- kbps:
					default:
						select {
						case <-s.bitrate:
						default:
						}
						continue
					}
					break
				}
			}
		}
	}
}

func (s *Session) requestKeyframe() {
	select {
	case s.keyReq <- struct{}{}:
	default:
	}
}

// stream captures, encodes changed frames and writes them to the track.
// It owns src until it returns: monitor switches (from the control
// channel) and the monitor list are handled here, between frames.
func (s *Session) stream(ctx context.Context, src Source) error {
	var enc Encoder
	defer func() {
		if enc != nil {
			enc.Close()
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case <-s.connected:
	}
	// The viewer has nothing yet: start with a key frame of the screen.
	s.requestKeyframe()
	// A source that reports changes is captured as soon as one happens,
	// at most once a frame interval; others are polled every interval.
	interval := time.Second / time.Duration(s.m.cfg.FPS)
	var changes <-chan struct{}
	if n, ok := src.(Notifier); ok {
		changes = n.Changes()
	}
	var tick <-chan time.Time
	if changes == nil {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	defer pace.Stop()
	var paced <-chan time.Time // pace.C while a paced capture is pending
	wanted := false            // a change waits for its capture
	// nextSlot is the earliest time for the next capture: slots follow
	// each other at the frame interval while the screen keeps changing
	// (so a continuous change gets the full frame rate, not a little
	// less), and the first change after a pause is captured at once.
	var nextSlot time.Time
	target := 0 // kbit/s from the viewer's last REMB; 0 before one
	layout := time.NewTicker(layoutInterval)
	defer layout.Stop()
	start := time.Now()
	last := start
	var w, h int
	var have bool
	var lastFrame Frame
	for {
		switched, forced := false, false
		select {
		case <-ctx.Done():
			return nil
		case kbps := <-s.bitrate:
			target = kbps * 9 / 10
			if enc != nil {
				enc.SetBitrate(target)
			}
			continue
		case <-layout.C:
			if mons, err := src.Monitors(); err != nil {
				s.log.Debug("monitor list unavailable", logKeySession, s.id, logKeyError, err)
			} else {
				s.setMonitors(mons, false)
			}
			continue
		case id := <-s.monitorReq:
			if err := src.Select(id); err != nil {
				s.log.Info("monitor not selected", logKeySession, s.id, logKeyMonitor, id, logKeyError, err)
				if mons, err := src.Monitors(); err == nil {
					s.setMonitors(mons, true)
				}
				continue
			}
			// The old frame is of the old area; the new one comes now.
			have, switched = false, true
		case <-s.keyReq:
			forced = true
		case <-tick:
		case <-changes:
			wanted = true
		case <-paced:
			paced = nil
		}
		if changes != nil && !switched && !forced {
			if !wanted {
				continue
			}
			if wait := time.Until(nextSlot); wait > 0 {
				if paced == nil {
					pace.Reset(wait)
					paced = pace.C
				}
				continue // too soon after the last frame: capture when due
			}
		}
		wanted = false
		if now := time.Now(); now.Sub(nextSlot) > interval {
			nextSlot = now.Add(interval) // after a pause: a fresh schedule
		} else {
			nextSlot = nextSlot.Add(interval)
		}
		f, err := src.Next()
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		if f.Changed {
			s.setView(f)
		}
		if switched {
			// The viewer hears of its choice, with the current list.
			mons, err := src.Monitors()
			if err != nil {
				s.mu.Lock()
				mons = s.monitors
				s.mu.Unlock()
			}
			s.setMonitors(mons, true)
		}
		if !forced {
			select {
			case <-s.keyReq:
				forced = true
			default:
			}
		}
		if !f.Changed && !forced {
			continue // idle screen: nothing to encode or send
		}
		if f.Changed {
			lastFrame, have = f, true
		}
		if !have {
			continue
		}
		if enc == nil || lastFrame.Width != w || lastFrame.Height != h {
			if enc != nil {
				enc.Close()
			}
			enc = nil
			w, h = lastFrame.Width, lastFrame.Height
			if enc, err = s.m.cfg.NewEncoder(w, h); err != nil {
				return fmt.Errorf("encoder: %w", err)
			}
			if target > 0 {
				enc.SetBitrate(target) // the link's estimate outlives a resize
			}
		}
		if forced {
			enc.ForceKeyframe()
		}
		now := time.Now()
		data, _, err := enc.Encode(lastFrame.Pix, lastFrame.Stride, now.Sub(start))
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		if len(data) == 0 {
			continue
		}
		if err := s.track.WriteSample(media.Sample{Data: data, Duration: now.Sub(last)}); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		last = now
	}
}
