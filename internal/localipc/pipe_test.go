package localipc

import (
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// The pipe's ACL: full access for SYSTEM and Administrators only; the
// interactive users' mask lets them read and write but not create a pipe
// instance; no one else (no Everyone, no anonymous) is listed; network
// logons are denied first.
func TestPipeSDDL(t *testing.T) {
	if !strings.HasPrefix(PipeSDDL, "O:SYG:SYD:P(") {
		t.Fatalf("the pipe must be owned by SYSTEM with a protected DACL: %s", PipeSDDL)
	}
	aces := regexp.MustCompile(`\(([AD]);;([^;]+);;;([A-Z]+)\)`).FindAllStringSubmatch(PipeSDDL, -1)
	got := map[string]string{}
	for i, a := range aces {
		if a[1] == "D" && i != 0 {
			t.Errorf("a deny ACE after an allow ACE: %v", a)
		}
		got[a[1]+" "+a[3]] = a[2]
	}
	want := map[string]string{"D NU": "FA", "A SY": "FA", "A BA": "FA", "A IU": "0x12019b"}
	if len(got) != len(want) || len(aces) != len(want) {
		t.Fatalf("ACEs %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("ACE %s = %q, want %q", k, got[k], v)
		}
	}
	mask, err := strconv.ParseUint(strings.TrimPrefix(got["A IU"], "0x"), 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	if mask != pipeClientAccess {
		t.Errorf("interactive users get %#x, but Dial asks for %#x", mask, pipeClientAccess)
	}
	if mask&fileCreatePipeInstance != 0 {
		t.Errorf("interactive users may create pipe instances (%#x)", mask)
	}
	if mask&(fileReadData|fileWriteData) != fileReadData|fileWriteData {
		t.Errorf("interactive users cannot read and write (%#x)", mask)
	}
	if mask&0x000F0000&^0x00020000 != 0 { // DELETE, WRITE_DAC, WRITE_OWNER
		t.Errorf("interactive users may change the pipe (%#x)", mask)
	}
}

func TestSIDUID(t *testing.T) {
	if u := SIDUID(SystemSID); u != 0 {
		t.Errorf("SYSTEM maps to %d, want 0 (root)", u)
	}
	seen := map[uint32]string{}
	for _, sid := range []string{"S-1-5-21-1004336348-1177238915-682003330-1001", "S-1-5-21-1004336348-1177238915-682003330-1002",
		"S-1-5-21-3623811015-3361044348-30300820-1001", "S-1-5-19", "S-1-5-20"} {
		u := SIDUID(sid)
		if u == 0 || u == ^uint32(0) {
			t.Errorf("%s maps to a reserved uid %d", sid, u)
		}
		if other, ok := seen[u]; ok {
			t.Errorf("%s and %s map to the same uid %d", sid, other, u)
		}
		seen[u] = sid
		if SIDUID(strings.ToLower(sid)) != u {
			t.Errorf("%s: the uid depends on the letters' case", sid)
		}
	}
}

func TestSIDIs(t *testing.T) {
	const user = "S-1-5-21-1-2-3-1001"
	check := SIDIs(user)
	for _, c := range []struct {
		cred Cred
		ok   bool
	}{
		{Cred{SID: user, UID: SIDUID(user)}, true},
		{Cred{SID: strings.ToLower(user)}, true},
		{Cred{SID: SystemSID}, false},
		{Cred{SID: "S-1-5-21-1-2-3-1002"}, false},
		{Cred{UID: SIDUID(user)}, false}, // a uid alone is not an identity
	} {
		err := check(c.cred)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("%+v: %v", c.cred, err)
		}
	}
	if s := (Cred{SID: user, PID: 7}).String(); s != "SID "+user+" (pid 7)" {
		t.Errorf("String() = %q", s)
	}
}

// The bytes the Windows listener read before it identified the client
// come first, then the rest of the stream: the first frame arrives whole.
func TestReplayConn(t *testing.T) {
	a, b := net.Pipe()
	sender := NewConn(a, Cred{}, 0)
	defer sender.Close()
	go func() {
		_ = sender.Send(&desksidev1.LocalMessage{Id: 1, Body: &desksidev1.LocalMessage_HelperHello{HelperHello: &desksidev1.HelperHello{Display: "winsta0"}}})
		_ = sender.Send(&desksidev1.LocalMessage{Id: 2})
	}()
	var hdr [4]byte
	if _, err := b.Read(hdr[:]); err != nil {
		t.Fatal(err)
	}
	c := NewConn(&replayConn{Conn: b, pre: hdr[:]}, Cred{}, 0)
	defer c.Close()
	for want := uint64(1); want <= 2; want++ {
		var m desksidev1.LocalMessage
		if err := c.Recv(&m); err != nil || m.GetId() != want {
			t.Fatalf("frame %d: %v, id %d", want, err, m.GetId())
		}
	}
}
