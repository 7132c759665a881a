package tray

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/deskside/deskside/internal/testkit"
	"github.com/deskside/deskside/internal/testpoll"
)

// watcher is a tray host's org.kde.StatusNotifierWatcher: it records the
// items that register.
type watcher struct {
	mu    sync.Mutex
	items []string // "sender path"
}

func (w *watcher) RegisterStatusNotifierItem(sender dbus.Sender, path string) *dbus.Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.items = append(w.items, string(sender)+" "+path)
	return nil
}

// startSessionBus starts a private D-Bus session daemon for t and
// returns its address.
func startSessionBus(t testing.TB) string {
	t.Helper()
	_, err := exec.LookPath("dbus-daemon")
	testkit.Need(t, "dbus-daemon", err, "install the Debian package dbus")
	daemon := exec.Command("dbus-daemon", "--session", "--nofork", "--print-address=1")
	out, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { daemon.Process.Signal(syscall.SIGTERM); daemon.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	return strings.TrimSpace(addr)
}

// hostTray makes conn a tray host: it owns the watcher's name.
func hostTray(t testing.TB, conn *dbus.Conn) *watcher {
	t.Helper()
	w := &watcher{}
	if err := conn.Export(w, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher"); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName("org.kde.StatusNotifierWatcher", dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own the watcher name: %v %v", r, err)
	}
	return w
}

// menuEntry is a dbusmenu item as a tray host reads it.
type menuEntry struct {
	id               int32
	label            string
	visible, enabled bool
}

// flatten reads a com.canonical.dbusmenu layout (ia{sv}av) into entries.
func flatten(v any, out *[]menuEntry) {
	s, ok := v.([]any)
	if !ok || len(s) != 3 {
		return
	}
	props, _ := s[1].(map[string]dbus.Variant)
	e := menuEntry{id: s[0].(int32), visible: true, enabled: true}
	if l, ok := props["label"]; ok {
		e.label, _ = l.Value().(string)
	}
	if v, ok := props["visible"]; ok {
		e.visible, _ = v.Value().(bool)
	}
	if v, ok := props["enabled"]; ok {
		e.enabled, _ = v.Value().(bool)
	}
	if t, ok := props["type"]; !ok || t.Value() != "separator" {
		if e.id != 0 {
			*out = append(*out, e)
		}
	}
	children, _ := s[2].([]dbus.Variant)
	for _, c := range children {
		flatten(c.Value(), out)
	}
}

// TestIconOverDBus runs the real tray icon (fyne.io/systray, without
// cgo) on a private session bus with a tray host's watcher, reads its
// menu as a desktop does (dbusmenu), checks it against the menu model as
// the state changes, and clicks Get help… through it.
func TestIconOverDBus(t *testing.T) {
	testkit.Heavy(t, "starts a D-Bus daemon")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", startSessionBus(t))

	// Without a watcher there is no tray host: a clear error at once.
	a := NewLinkAgent(nil, nil)
	var tp atomic.Pointer[Tray]
	srv, err := StartServer(ServerOptions{Agent: a, OnStateChange: func() {
		if tr := tp.Load(); tr != nil {
			tr.Refresh()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	opened := make(chan string, 4)
	tr := NewTray(a, srv, func(u string) error { opened <- u; return nil }, nil)
	tp.Store(tr)
	if err := trayHost(); err == nil || !strings.Contains(err.Error(), "StatusNotifierWatcher") {
		t.Fatalf("without a tray host: %v", err)
	}

	host, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	w := hostTray(t, host)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunIcon(ctx, tr) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("RunIcon: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("RunIcon did not return after its context ended")
		}
	}()
	var sender string
	testpoll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.items) == 0 {
			return fmt.Errorf("no item registered with the watcher")
		}
		sender, _, _ = strings.Cut(w.items[0], " ")
		return nil
	})
	menu := host.Object(sender, "/StatusNotifierItem/menu")
	read := func() []menuEntry {
		t.Helper()
		var rev uint32
		var layout []any
		call := menu.Call("com.canonical.dbusmenu.GetLayout", 0, int32(0), int32(-1), []string{})
		if call.Err != nil {
			t.Fatalf("GetLayout: %v", call.Err)
		}
		if err := call.Store(&rev, &layout); err != nil {
			t.Fatalf("GetLayout: %v", err)
		}
		var es []menuEntry
		flatten(layout, &es)
		return es
	}
	// match compares what the host shows with the model for the state.
	match := func(s MenuState) error {
		shown := read()
		model := Menu(s)
		if len(shown) != len(model) {
			return fmt.Errorf("host shows %d items, the model has %d: %+v", len(shown), len(model), shown)
		}
		for i, it := range model {
			if e := shown[i]; e.label != it.Label || e.visible != it.Visible || e.enabled != it.Enabled {
				return fmt.Errorf("item %d: host shows %+v, the model says %+v", i, e, it)
			}
		}
		return nil
	}
	testpoll.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error { return match(tr.State()) })

	t.Log("a session shows with End session; the user clicks Get help… in the host's menu")
	a.SetSession(SessionState{Active: true, Technician: "Dana (tier 2)"}, nil)
	want := MenuState{Reachable: true, Session: SessionState{Active: true, Technician: "Dana (tier 2)"}}
	if got := tr.State(); got != want {
		t.Fatalf("state %+v", got)
	}
	shown := time.Now()
	testpoll.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error { return match(want) })
	t.Logf("session in the host's menu after %v", time.Since(shown).Round(time.Millisecond))
	var getHelp int32
	for _, e := range read() {
		if e.label == "Get help…" {
			getHelp = e.id
		}
	}
	if call := menu.Call("com.canonical.dbusmenu.Event", 0, getHelp, "clicked", dbus.MakeVariant(""), uint32(0)); call.Err != nil {
		t.Fatal(call.Err)
	}
	select {
	case u := <-opened:
		if u != srv.URL("") {
			t.Fatalf("opened %q", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("clicking Get help… in the host opened nothing")
	}
}
