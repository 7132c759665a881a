package diag

import (
	"slices"
	"testing"

	"github.com/deskside/deskside/proto/wire"
)

// The CLI validates check names against wire.CheckNames: the agent must
// implement exactly those.
func TestNamesAreWireCheckNames(t *testing.T) {
	if !slices.IsSorted(wire.CheckNames) {
		t.Errorf("wire.CheckNames is not sorted: %v", wire.CheckNames)
	}
	if got := New(Options{}).Names(); !slices.Equal(got, wire.CheckNames) {
		t.Errorf("agent checks %v, wire.CheckNames %v", got, wire.CheckNames)
	}
}
