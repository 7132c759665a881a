package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
	"github.com/deskside/deskside/relay/store"
)

// TestTicketsFollowDeviceGroups: a technician with device groups sees,
// reads and changes only tickets about devices of those groups (and
// tickets about no device); a ticket outside them answers like a missing
// one, in lists, by code and on the live watch, and a change of the
// technician's groups applies to a watch already open.
func TestTicketsFollowDeviceGroups(t *testing.T) {
	r := servertest.Start(t, servertest.Options{Modify: func(c *server.Config) { c.CallerRecheck = 50 * time.Millisecond }})
	front := r.Enroll(t, "tg-front").DeviceID
	lab := r.Enroll(t, "tg-lab").DeviceID
	admin := signIn(t, r, "admin", servertest.AdminPassword)
	for id, g := range map[string]string{front: "front-desk", lab: "lab"} {
		if _, err := admin.cs.SetDeviceGroup(admin.ctx, &desksidev1.SetDeviceGroupRequest{DeviceId: id, Group: g}); err != nil {
			t.Fatal(err)
		}
	}
	const pw = "ticket scope password"
	scoped := addScopedTech(t, r, "scoped", pw, desksidev1.Role_ROLE_TIER2, []string{"front-desk"})
	ts := desksidev1.NewTicketServiceClient(r.Dial(t))
	file := func(subject, device string) string {
		t.Helper()
		resp, err := ts.CreateTicket(admin.ctx, &desksidev1.CreateTicketRequest{Subject: subject,
			Requester: &desksidev1.TicketRequester{Name: "Ada", DeviceId: device}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetTicket().GetCode()
	}

	wctx, cancel := context.WithCancel(scoped.ctx)
	defer cancel()
	w, err := ts.WatchTickets(wctx, &desksidev1.WatchTicketsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil { // live
		t.Fatal(err)
	}
	events := make(chan string, 64)
	go func() {
		defer close(events)
		for {
			m, err := w.Recv()
			if err != nil {
				return
			}
			events <- m.GetTicket().GetSubject()
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case s, ok := <-events:
			if !ok {
				t.Fatal("the scoped watch ended")
			}
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no ticket event in 10 s")
		}
		return ""
	}

	labCode := file("lab printer", lab)
	frontCode := file("front desk screen", front)
	phone := file("phoned in", "")
	if got := next(); got != "front desk screen" {
		t.Fatalf("first event on the scoped watch: %q; want the front-desk ticket (the lab one is outside the groups)", got)
	}
	if got := next(); got != "phoned in" {
		t.Fatalf("second event: %q; want the ticket about no device", got)
	}

	list, err := ts.ListTickets(scoped.ctx, &desksidev1.ListTicketsRequest{Queue: desksidev1.TicketQueue_TICKET_QUEUE_ALL})
	if err != nil {
		t.Fatal(err)
	}
	var codes_ []string
	for _, tk := range list.GetTickets() {
		codes_ = append(codes_, tk.GetCode())
	}
	if len(codes_) != 2 || list.GetTotal() != 2 || strings.Contains(strings.Join(codes_, " "), labCode) {
		t.Errorf("scoped list: %v (total %d); want %s and %s only", codes_, list.GetTotal(), frontCode, phone)
	}
	byCode, err := ts.ListTickets(scoped.ctx, &desksidev1.ListTicketsRequest{Search: labCode})
	if err != nil || len(byCode.GetTickets()) != 0 || byCode.GetTotal() != 0 {
		t.Errorf("scoped search by the lab ticket's code: %v, %v; want nothing", byCode, err)
	}
	_, missing := ts.GetTicket(scoped.ctx, &desksidev1.GetTicketRequest{Code: "DS-ZZZZ"})
	for name, call := range map[string]func() error{
		"GetTicket": func() error {
			_, err := ts.GetTicket(scoped.ctx, &desksidev1.GetTicketRequest{Code: labCode})
			return err
		},
		"ReplyTicket": func() error {
			_, err := ts.ReplyTicket(scoped.ctx, &desksidev1.ReplyTicketRequest{Code: labCode, Text: "hello"})
			return err
		},
		"AssignTicket": func() error {
			_, err := ts.AssignTicket(scoped.ctx, &desksidev1.AssignTicketRequest{Code: labCode, Claim: true})
			return err
		},
		"MergeTicket": func() error {
			_, err := ts.MergeTicket(scoped.ctx, &desksidev1.MergeTicketRequest{Code: frontCode, Into: labCode})
			return err
		},
	} {
		err := call()
		want := strings.ReplaceAll(status.Convert(missing).Message(), "DS-ZZZZ", labCode)
		if status.Code(missing) != codes.NotFound || status.Code(err) != codes.NotFound || status.Convert(err).Message() != want {
			t.Errorf("scoped %s of the lab ticket: %v; want as for a missing one (%v)", name, err, missing)
		}
	}
	if _, err := ts.GetTicket(scoped.ctx, &desksidev1.GetTicketRequest{Code: frontCode}); err != nil {
		t.Errorf("scoped GetTicket of the front-desk ticket: %v", err)
	}
	if _, err := ts.GetTicket(admin.ctx, &desksidev1.GetTicketRequest{Code: labCode}); err != nil {
		t.Errorf("admin GetTicket of the lab ticket: %v", err)
	}

	// The admin moves the technician to the lab: the open watch follows.
	if _, err := admin.ts.UpdateTechnician(admin.ctx, &desksidev1.UpdateTechnicianRequest{Name: "scoped", SetGroups: true, Groups: []string{"lab"}}); err != nil {
		t.Fatal(err)
	}
	// Re-filed until the watch has re-read the account (50 ms). While it
	// switches, both tickets of a round may be filtered, so each round
	// waits briefly rather than for one event.
	deadline := time.Now().Add(20 * time.Second)
	for moved := false; !moved; {
		if time.Now().After(deadline) {
			t.Fatal("the open watch still follows the old groups after 20 s")
		}
		file("lab keyboard", lab)
		file("front desk mouse", front)
	round:
		for {
			select {
			case s, ok := <-events:
				if !ok {
					t.Fatal("the scoped watch ended")
				}
				moved = moved || s == "lab keyboard"
			case <-time.After(300 * time.Millisecond):
				break round
			}
		}
	}
	if _, err := ts.GetTicket(scoped.ctx, &desksidev1.GetTicketRequest{Code: labCode}); err != nil {
		t.Errorf("after the move, GetTicket of the lab ticket: %v", err)
	}
}

// TestDisablingEndsOpenCalls: disabling a technician ends their open
// watches and remote-desktop sessions, which re-read the account from the
// store every relay shares (so on every relay), and says why.
func TestDisablingEndsOpenCalls(t *testing.T) {
	r := servertest.Start(t, servertest.Options{Modify: func(c *server.Config) { c.CallerRecheck = 50 * time.Millisecond }})
	st := r.Enroll(t, "de-desk")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := connectAgent(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 1)
	stopped := make(chan struct{}, 1)
	go func() { // an agent that holds the session until told to stop
		for {
			m, err := a.stream.Recv()
			if err != nil {
				return
			}
			switch b := m.GetBody().(type) {
			case *desksidev1.RelayMessage_StartDesktop:
				started <- b.StartDesktop.GetSessionId()
			case *desksidev1.RelayMessage_EndDesktop:
				stopped <- struct{}{}
			}
		}
	}()
	admin := signIn(t, r, "admin", servertest.AdminPassword)
	if _, err := admin.cs.SetDevicePolicy(admin.ctx, &desksidev1.SetDevicePolicyRequest{DeviceId: st.DeviceID, UnattendedAllowed: true}); err != nil {
		t.Fatal(err)
	}
	const pw = "disable me password"
	tech := addScopedTech(t, r, "leaver", pw, desksidev1.Role_ROLE_TIER3, nil)
	watch, err := tech.cs.WatchDevices(tech.ctx, &desksidev1.WatchDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	ds, err := tech.cs.StartDesktopSession(tech.ctx, &desksidev1.StartDesktopSessionRequest{DeviceId: st.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ds.Recv(); err != nil {
		t.Fatal(err)
	}
	sid := <-started

	// Disabled in the store directly, as another relay would: this relay
	// learns it only by re-reading.
	if _, err := r.Srv.Store().EditTechnician(t.Context(), "leaver", func(t *store.Technician) error { t.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for {
		_, err := ds.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "disabled") {
			t.Fatalf("desktop session of a disabled technician: %v; want Unauthenticated, disabled", err)
		}
		break
	}
	t.Logf("session ended %s after the account was disabled", time.Since(began).Round(time.Millisecond))
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatalf("the agent was not told to stop session %s", sid)
	}
	for {
		if _, err := watch.Recv(); err != nil {
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("device watch of a disabled technician: %v; want Unauthenticated", err)
			}
			break
		}
	}
	servertest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		evs, err := r.Srv.Store().ListAudit(t.Context(), store.AuditFilter{Actor: "leaver", Action: "desktop.end"})
		if err != nil {
			return err
		}
		if len(evs) != 1 || !strings.Contains(evs[0].Detail, "technician lost access") {
			return fmt.Errorf("desktop.end audit records %v", evs)
		}
		return nil
	})
}
