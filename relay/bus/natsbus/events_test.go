package natsbus

import (
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/internal/testkit"
)

// TestDeviceAnnouncements checks that a device change announced on one
// relay reaches both, in order, that stop ends the delivery and that an
// ID that cannot be announced is refused.
func TestDeviceAnnouncements(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	gotA, gotB := make(chan string, 8), make(chan string, 8)
	stopA, err := a.OnDevice(func(id string) { gotA <- id })
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	stopB, err := b.OnDevice(func(id string) { gotB <- id })
	if err != nil {
		t.Fatal(err)
	}
	// Subscriptions are in place on the server once flushed.
	if err := a.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dev-1", "dev-2"} {
		if err := a.NotifyDevice(id); err != nil {
			t.Fatal(err)
		}
	}
	for name, ch := range map[string]chan string{"announcing relay": gotA, "other relay": gotB} {
		for _, want := range []string{"dev-1", "dev-2"} {
			select {
			case got := <-ch:
				if got != want {
					t.Errorf("%s got %q, want %q", name, got, want)
				}
			case <-time.After(wait):
				t.Fatalf("%s did not hear of %s", name, want)
			}
		}
	}

	stopB()
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := a.NotifyDevice("dev-3"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gotA: // delivered to a; b's stop has had a round trip to take effect
	case <-time.After(wait):
		t.Fatal("announcing relay did not hear of dev-3")
	}
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-gotB:
		t.Errorf("stopped subscriber got %q", id)
	default:
	}

	if err := a.NotifyDevice(strings.Repeat("x", maxEventID+1)); err == nil {
		t.Error("an over-long device id was announced")
	}
	if err := a.NotifyDevice(""); err == nil {
		t.Error("an empty device id was announced")
	}
}

// TestTicketAnnouncements checks that a ticket event announced on one
// relay reaches the other with its kind and code, and that a malformed
// one is refused.
func TestTicketAnnouncements(t *testing.T) {
	testkit.CheckGoroutines(t)
	a, b := relays(t)
	got := make(chan string, 8)
	stop, err := b.OnTicket(func(kind, code string) { got <- kind + "/" + code })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"DS-7K3Q", "DS-ABCD"} {
		if err := a.NotifyTicket("created", c); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"created/DS-7K3Q", "created/DS-ABCD"} {
		select {
		case g := <-got:
			if g != want {
				t.Errorf("got %q, want %q", g, want)
			}
		case <-time.After(wait):
			t.Fatalf("other relay did not hear of %s", want)
		}
	}
	for _, bad := range [][2]string{{"", "DS-7K3Q"}, {"created", ""}, {"two words", "DS-7K3Q"}, {"created", strings.Repeat("x", maxTicketEvent)}} {
		if err := a.NotifyTicket(bad[0], bad[1]); err == nil {
			t.Errorf("NotifyTicket(%q, %q) announced", bad[0], bad[1])
		}
	}
}
