package desktop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/desktop"
	"github.com/deskside/deskside/agent/desktop/internal/testclient"
	"github.com/deskside/deskside/agent/desktop/internal/viewertest"
	"github.com/deskside/deskside/agent/desktop/internal/vpxdec"
	"github.com/deskside/deskside/agent/desktop/internal/xvfb"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

type staticInventory struct{}

func (staticInventory) Read(context.Context) (*desksidev1.Inventory, error) {
	return &desksidev1.Inventory{Hostname: "desk", CollectedAt: timestamppb.Now()}, nil
}

type staticHealth struct{}

func (staticHealth) Sample(context.Context) (*desksidev1.HealthSample, error) {
	return &desksidev1.HealthSample{Time: timestamppb.Now()}, nil
}

// viewer is the Go viewer (viewertest) standing in for the browser, with
// the control channel kept, failing the test when a frame does not come.
type viewer struct {
	*viewertest.Viewer
	t *testing.T
}

func openViewer(t *testing.T, cs desksidev1.ConsoleServiceClient, ctx context.Context, device string, relayOnly bool) (*viewer, error) {
	return openViewerWith(t, cs, ctx, device, viewerOptions{relayOnly: relayOnly})
}

// viewerOptions adjust openViewerWith's session.
type viewerOptions struct {
	relayOnly, viewOnly bool
	ticket              string
}

func openViewerWith(t *testing.T, cs desksidev1.ConsoleServiceClient, ctx context.Context, device string, o viewerOptions) (*viewer, error) {
	v, err := viewertest.Open(t, cs, ctx, device, viewertest.Options{RelayOnly: o.relayOnly, ViewOnly: o.viewOnly, Control: true, TicketCode: o.ticket})
	if err != nil {
		return nil, err
	}
	return &viewer{Viewer: v, t: t}, nil
}

func (v *viewer) frame(timeout time.Duration) *vpxdec.Frame {
	v.t.Helper()
	f, err := v.Frame(timeout)
	if err != nil {
		v.t.Fatal(err)
	}
	return f
}

func near(a, b uint8) bool {
	return a > b-40 && a < b+40 || (b == 0 && a < 40) || (b == 255 && a > 215)
}

// countFDs counts the process's open files, less the relay's database:
// its connection pool may open another connection to the SQLite file
// (and its WAL) while a session runs and keep it, which is no leak of the
// agent's.
func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.Contains(filepath.Base(l), ".db") {
			continue
		}
		n++
	}
	return n
}

func TestDesktopSessionEndToEnd(t *testing.T) {
	xs := xvfb.StartWith(t, xvfb.Config{Width: 1280, Height: 720})
	tc, err := testclient.Start(xs.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	r := servertest.Start(t, servertest.Options{})
	st := r.Enroll(t, "desk")
	mgr := desktop.NewManager(desktop.Options{Display: xs.Display, Logger: servertest.DiscardLogger()})
	servertest.RunAgent(t, st, servertest.AgentOptions{Inventory: staticInventory{}, Health: staticHealth{}, Desktop: mgr})
	cs, ctx := r.Admin(t)
	servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil || !d.GetDevice().GetOnline() {
			return fmt.Errorf("agent not online")
		}
		return nil
	})

	// Attended by default (consent_linux_test.go); this test is about
	// the session itself.
	if _, err := cs.SetDevicePolicy(ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}

	for _, relayOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("relay_only=%v", relayOnly), func(t *testing.T) {
			runtime.GC()
			g0, fd0 := runtime.NumGoroutine(), countFDs()
			v, err := openViewer(t, cs, ctx, st.DeviceID, relayOnly)
			if err != nil {
				t.Fatal(err)
			}
			f := v.frame(20 * time.Second)
			w, h := f.Width, f.Height
			for i, p := range [][2]int{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}} {
				want := testclient.DefaultQuadrants[i]
				r, g, b := f.RGB(p[0], p[1])
				if !near(r, want.R) || !near(g, want.G) || !near(b, want.B) {
					t.Errorf("quadrant %d at %v: got %d,%d,%d want %v", i, p, r, g, b, want)
				}
			}
			// Every video packet asks the viewer to show its frame at once
			// (a playout delay of zero: session/playoutdelay.go).
			if s := v.Stats(); s.Packets == 0 || s.ZeroPlayoutDelay < s.Packets {
				t.Errorf("%d of %d video packets carry a zero playout delay, want all", s.ZeroPlayoutDelay, s.Packets)
			}
			if relayOnly {
				pair, err := v.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
				if err != nil || pair == nil || pair.Local.Typ != webrtc.ICECandidateTypeRelay {
					t.Fatalf("selected pair %v %v, want relayed through TURN", pair, err)
				}
			}
			// Input: a click and a typed string reach the test client.
			var dc *webrtc.DataChannel
			select {
			case dc = <-v.Input:
			case <-time.After(10 * time.Second):
				t.Fatal("input channel did not open")
			}
			tc.ResetEvents()
			sendJSON := func(m map[string]any) {
				b, _ := json.Marshal(m)
				if err := dc.SendText(string(b)); err != nil {
					t.Fatal(err)
				}
			}
			sendJSON(map[string]any{"t": "m", "x": 300, "y": 200})
			sendJSON(map[string]any{"t": "b", "b": 1, "d": true})
			sendJSON(map[string]any{"t": "b", "b": 1, "d": false})
			for _, k := range []struct {
				code  string
				shift bool
			}{{"KeyH", true}, {"KeyI", false}, {"Digit1", true}} {
				if k.shift {
					sendJSON(map[string]any{"t": "k", "c": "ShiftLeft", "d": true})
				}
				sendJSON(map[string]any{"t": "k", "c": k.code, "d": true})
				sendJSON(map[string]any{"t": "k", "c": k.code, "d": false})
				if k.shift {
					sendJSON(map[string]any{"t": "k", "c": "ShiftLeft", "d": false})
				}
			}
			if err := tc.WaitFor(func(evs []testclient.Event) bool {
				click := false
				for _, e := range evs {
					if e.Kind == testclient.ButtonPress && e.Button == 1 && e.RootX == 300 && e.RootY == 200 {
						click = true
					}
				}
				return click && testclient.Text(evs) == "Hi!"
			}, 10*time.Second); err != nil {
				t.Fatalf("input did not arrive: %v (%v)", err, tc.Events())
			}
			// A screen change reaches the viewer.
			tc.SetColor(0, 0, 255)
			servertest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				f := v.frame(10 * time.Second)
				if r, g, b := f.RGB(f.Width/4, f.Height/4); !(r < 40 && g < 40 && b > 215) {
					return fmt.Errorf("still %d,%d,%d", r, g, b)
				}
				return nil
			})
			tc.SetQuadrants(testclient.DefaultQuadrants)

			// End the session: everything the agent held is released.
			v.Close()
			servertest.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
				if g, fd := runtime.NumGoroutine(), countFDs(); g > g0+2 || fd > fd0 {
					return fmt.Errorf("goroutines %d (were %d), fds %d (were %d)", g, g0, fd, fd0)
				}
				return nil
			})
		})
	}
}
