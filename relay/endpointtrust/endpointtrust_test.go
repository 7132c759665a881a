package endpointtrust

import (
	"strings"
	"testing"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func TestRefusalAndRoundTrip(t *testing.T) {
	if Refusal(nil, Commands) != "" {
		t.Fatal("a device that never reported refuses")
	}
	off := &desksidev1.EndpointTrust{NoCommands: true}
	if r := Refusal(off, Actions); !strings.Contains(r, "commands and actions") {
		t.Fatalf("actions on a commands-off device: %q", r)
	}
	if Refusal(off, Desktop) != "" {
		t.Fatal("commands off refuses desktop sessions")
	}
	// Reported with everything allowed is not "never reported", and is
	// not empty either (SQLite reads an empty blob back as NULL).
	empty := Marshal(&desksidev1.EndpointTrust{})
	if len(empty) == 0 || Parse(empty) == nil {
		t.Fatalf("an all-default report reads back as never reported: %x", empty)
	}
	got := Parse(Marshal(Clean(&desksidev1.EndpointTrust{Groups: []string{" lab ", "lab", "", "\x1b[2Jshop"}})))
	if strings.Join(got.GetGroups(), ",") != "lab,shop" {
		t.Fatalf("cleaned groups %q", got.GetGroups())
	}
	if d := Describe(got); d != "no org key pinned, commands allowed, desktop allowed, groups lab,shop" {
		t.Fatalf("Describe: %q", d)
	}
}
