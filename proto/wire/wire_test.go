package wire

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func TestCleanString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"tab\there\nnl", 20, "tab here nl"},
		{"esc\x1b[31mred", 20, "escred"},
		{"title\x1b]0;pwned\x07!", 20, "title!"},
		{"rtl\u202eevil", 20, "rtlevil"},
		{"bad\xffutf8", 20, "bad\uFFFDutf8"},
		{"abcdefghij", 5, "abcd…"},
		{"ééééé", 5, "ééééé"},
		{"<script>x</script>", 100, "<script>x</script>"}, // text, escaped where rendered
	} {
		if got := CleanString(tc.in, tc.max); got != tc.want {
			t.Errorf("CleanString(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestSanitizeCapsEveryString(t *testing.T) {
	long := strings.Repeat("x", 10000)
	inv := &desksidev1.Inventory{
		Hostname: long,
		Os:       &desksidev1.OperatingSystem{Name: long},
		Nics:     []*desksidev1.NetworkInterface{{Name: long, Addresses: []string{long}}},
		Software: []*desksidev1.Software{{Name: long, Version: long}},
		Users:    []*desksidev1.LoggedInUser{{Name: "\x1b]0;pwned\x07" + long}},
	}
	if err := DefaultCaps.Sanitize(inv.ProtoReflect()); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"hostname": inv.Hostname, "os": inv.Os.Name, "nic": inv.Nics[0].Name, "addr": inv.Nics[0].Addresses[0],
		"sw": inv.Software[0].Name, "ver": inv.Software[0].Version, "user": inv.Users[0].Name,
	} {
		if n := utf8.RuneCountInString(s); n > 256 {
			t.Errorf("%s: %d runes", name, n)
		}
		if strings.ContainsAny(s, "\x1b\x07") {
			t.Errorf("%s keeps control characters", name)
		}
	}
}

func TestSanitizeRefuses(t *testing.T) {
	many := &desksidev1.Inventory{}
	for range 1025 {
		many.Partitions = append(many.Partitions, &desksidev1.Partition{})
	}
	if err := DefaultCaps.Sanitize(many.ProtoReflect()); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "Inventory.partitions has 1025 entries, limit 1024") {
		t.Fatalf("too many partitions: %v", err)
	}
	nan := &desksidev1.HealthSample{Load1: zero() / zero()}
	if err := DefaultCaps.Sanitize(nan.ProtoReflect()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NaN: %v", err)
	}
	// The error names the field by its whole path, list indexes included.
	deep := &desksidev1.HealthReport{Samples: []*desksidev1.HealthSample{{Id: 1}, {Id: 2, Mounts: []*desksidev1.MountUsage{
		{Mountpoint: "/"}, {Mountpoint: "/home", UsedPercent: zero() / zero()}}}}}
	if err := DefaultCaps.Sanitize(deep.ProtoReflect()); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "HealthReport.samples[1].mounts[1].used_percent is not a finite number") {
		t.Fatalf("NaN deep in a report: %v", err)
	}
}

func BenchmarkSanitizeHealthReport(b *testing.B) {
	procs := []*desksidev1.ProcessUsage{{Pid: 1, Name: "chrome", User: "jdoe", CpuPercent: 12}, {Pid: 2, Name: "code", User: "jdoe"},
		{Pid: 3, Name: "teams", User: "jdoe"}, {Pid: 4, Name: "svchost", User: "SYSTEM"}, {Pid: 5, Name: "explorer", User: "jdoe"}}
	r := &desksidev1.HealthReport{Samples: []*desksidev1.HealthSample{{Id: 1, CpuPercent: 20, Load1: 1,
		Mounts: []*desksidev1.MountUsage{{Mountpoint: "/", UsedPercent: 40}, {Mountpoint: "/home", UsedPercent: 70}, {Mountpoint: "/boot", UsedPercent: 10}},
		TopCpu: procs, TopMemory: procs,
		Temperatures: []*desksidev1.Temperature{{Sensor: "coretemp Package id 0", Celsius: 50}, {Sensor: "nvme Composite", Celsius: 40}}}}}
	b.ReportAllocs()
	for b.Loop() {
		if err := DefaultCaps.Sanitize(r.ProtoReflect()); err != nil {
			b.Fatal(err)
		}
	}
}

func zero() float64 { return 0 }

func TestTokenRoundTrip(t *testing.T) {
	tok := NewToken(NewToken("").Secret)
	got, err := ParseToken(" " + tok.String() + "\n")
	if err != nil || got != tok {
		t.Fatalf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"", "a.b", "a.b.c", tok.ID + "." + tok.Secret + ".short", "zz" + tok.String()[2:]} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("ParseToken(%q) = %v", bad, err)
		}
	}
}

// TestTokenOrgFingerprint: a token with a fourth part carries the
// organisation key fingerprint; three-part tokens (before organisation
// keys) still parse, without one.
func TestTokenOrgFingerprint(t *testing.T) {
	old := NewToken(NewToken("").Secret)
	got, err := ParseToken(old.String())
	if err != nil || got.OrgFingerprint != "" || strings.Count(old.String(), ".") != 2 {
		t.Fatalf("three parts: %+v %v", got, err)
	}
	tok := old
	tok.OrgFingerprint = CAPin([]byte("an organisation public key.....")) // same form as envelope.Fingerprint
	s := tok.String()
	if strings.Count(s, ".") != 3 || !strings.HasSuffix(s, "."+tok.OrgFingerprint) {
		t.Fatalf("four parts: %q", s)
	}
	if got, err := ParseToken(s); err != nil || got != tok {
		t.Fatalf("four parts round trip: %+v %v", got, err)
	}
	for _, bad := range []string{old.String() + ".", old.String() + ".short", old.String() + "." + tok.Pin + "x", s + "." + tok.OrgFingerprint} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrMalformedToken) {
			t.Errorf("ParseToken(%q) = %v", bad, err)
		}
	}
}

// FuzzSanitize feeds arbitrary bytes decoded as an inventory through the
// sanitizer: it must never panic, and what it accepts must be within caps
// and re-encodable.
func FuzzSanitize(f *testing.F) {
	seed, _ := proto.Marshal(&desksidev1.Inventory{Hostname: "h\x1b", Software: []*desksidev1.Software{{Name: "a"}}})
	f.Add(seed)
	f.Add([]byte{0x0a, 0x03, 0xff, 0xfe, 0xfd})
	f.Fuzz(func(t *testing.T, b []byte) {
		inv := new(desksidev1.Inventory)
		if proto.Unmarshal(b, inv) != nil {
			return
		}
		if err := DefaultCaps.Sanitize(inv.ProtoReflect()); err != nil {
			return
		}
		if utf8.RuneCountInString(inv.Hostname) > 256 || !utf8.ValidString(inv.Hostname) {
			t.Fatalf("hostname escaped the caps: %q", inv.Hostname)
		}
		if _, err := proto.Marshal(inv); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseToken(f *testing.F) {
	f.Add(NewToken(NewToken("").Secret).String())
	f.Add("..")
	f.Add("...")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err == nil {
			if again, err := ParseToken(tok.String()); err != nil || again != tok {
				t.Fatalf("accepted token does not round-trip: %q", s)
			}
		}
	})
}
