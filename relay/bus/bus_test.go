package bus

import (
	"context"
	"errors"
	"testing"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func reply(tag string) Handler {
	return func(_ context.Context, _ *desksidev1.RelayMessage, recv func(*desksidev1.AgentMessage) bool) error {
		recv(&desksidev1.AgentMessage{Body: &desksidev1.AgentMessage_Error{Error: &desksidev1.RequestError{Message: tag}}})
		return nil
	}
}

func TestLocalRoutes(t *testing.T) {
	b := NewLocal()
	ctx := context.Background()
	if _, err := Request(ctx, b, "d1", &desksidev1.RelayMessage{}); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("no route: %v", err)
	}
	stopOld, _ := b.Serve("d1", reply("old"))
	stopNew, _ := b.Serve("d1", reply("new")) // reconnect: newer stream wins
	m, err := Request(ctx, b, "d1", &desksidev1.RelayMessage{})
	if err != nil || m.GetError().GetMessage() != "new" {
		t.Fatalf("got %v %v, want the newer route", m, err)
	}
	stopOld() // the replaced stream ending must not remove the new route
	if m, _ := Request(ctx, b, "d1", &desksidev1.RelayMessage{}); m.GetError().GetMessage() != "new" {
		t.Fatal("stopping the old route removed the new one")
	}
	stopNew()
	if _, err := Request(ctx, b, "d1", &desksidev1.RelayMessage{}); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("after stop: %v", err)
	}
}
