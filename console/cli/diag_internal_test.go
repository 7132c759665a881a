package cli

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func TestShellJoin(t *testing.T) {
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"echo", "a b"}, `echo 'a b'`},
		{[]string{"echo", "hello"}, `echo hello`},
		{[]string{"sh", "-c", "exit 3"}, `sh -c 'exit 3'`},
		{[]string{"printf", "it's"}, `printf 'it'\''s'`},
		{[]string{"echo", "$HOME", "*", "~", "[a]", "", "a;b", "`x`", "a\nb"}, "echo '$HOME' '*' '~' '[a]' '' 'a;b' '`x`' 'a\nb'"},
		{[]string{"ls", "-la", "/var/log", "key=value", "user@host:/p", "50%", "a,b+c"}, `ls -la /var/log key=value user@host:/p 50% a,b+c`},
	} {
		if got := shellJoin(tc.argv); got != tc.want {
			t.Errorf("shellJoin(%q) = %q, want %q", tc.argv, got, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"10MiB": 10 << 20, "10M": 10 << 20, "10mb": 10e6, "512KiB": 512 << 10, "1048576": 1 << 20,
		"1.5k": 1536, "2 GiB": 2 << 30, "100B": 100,
	} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "10XB", "-1", "ten", "1e30"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}

func TestParseFilters(t *testing.T) {
	f, err := parseFilters([]string{"hostname=lab-", "OS=Ubuntu", "user=bob", "model=ThinkPad", "query=x", "online"})
	if err != nil {
		t.Fatal(err)
	}
	if f.GetHostname() != "lab-" || f.GetOs() != "Ubuntu" || f.GetUser() != "bob" || f.GetModel() != "ThinkPad" ||
		f.GetQuery() != "x" || f.Online == nil || !f.GetOnline() {
		t.Errorf("filters: %v", f)
	}
	for _, tc := range []struct {
		in   []string
		want *bool
	}{
		{[]string{"offline"}, new(false)},
		{[]string{"online=false"}, new(false)},
		{[]string{"online=no"}, new(false)},
		{[]string{"online=yes"}, new(true)},
	} {
		f, err := parseFilters(tc.in)
		if err != nil || f.Online == nil || *f.Online != *tc.want {
			t.Errorf("%q: %v, %v", tc.in, f, err)
		}
	}
	for in, want := range map[string]string{
		"group=lab":   "cannot select devices by group",
		"color=blue":  "unknown key",
		"hostname=":   "needs a value",
		"hostname":    "needs a value",
		"online=perh": "expected true or false",
		"id=dev-1":    "give its ID",
	} {
		if _, err := parseFilters([]string{in}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
	if _, err := parseFilters([]string{"os=a", "os=b"}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate key: %v", err)
	}
	if _, err := parseFilters([]string{"online", "offline"}); err == nil {
		t.Error("online and offline together: no error")
	}
}

func TestTermWriter(t *testing.T) {
	var buf bytes.Buffer
	tw := &termWriter{w: &buf}
	// An escape sequence, a title change, a bell, CRLF, tabs; "é" and "€"
	// split across chunks.
	for _, chunk := range []string{"a\x1b[31mred\x1b[0m\tb\r\n", "\x1b]0;title\x07ok\x07 caf\xc3", "\xa9 \xe2\x82", "\xac\n", "end\xe2"} {
		if _, err := tw.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "ared\tb\nok café €\nend\uFFFD"; got != want {
		t.Errorf("termWriter wrote %q, want %q", got, want)
	}
}

func TestFanDeviceLines(t *testing.T) {
	d := &fanDevice{id: "dev-1", host: "pc\x1b[31m1"}
	d.pend[1] = []byte("one\ntw")
	if got := string(d.lines(1, false)); got != "pc1: one\n" {
		t.Errorf("complete lines: %q", got)
	}
	d.pend[1] = append(d.pend[1], "o\r\nthree"...)
	if got := string(d.lines(1, false)); got != "pc1: two\n" {
		t.Errorf("after more output: %q", got)
	}
	if got := string(d.lines(1, true)); got != "pc1: three\n" {
		t.Errorf("final: %q", got)
	}
	// A very long line is printed in pieces.
	d.pend[2] = bytes.Repeat([]byte("x"), fanoutLineLimit+10)
	if got := d.lines(2, false); len(got) != len("pc1: ")+fanoutLineLimit+1 || len(d.pend[2]) != 10 {
		t.Errorf("long line: printed %d bytes, kept %d", len(got), len(d.pend[2]))
	}
}

func TestVerdictAndReport(t *testing.T) {
	res := func(name string, s desksidev1.CheckStatus) *desksidev1.CheckResult {
		return &desksidev1.CheckResult{Name: name, Status: s, Summary: "summary of " + name + "\x1b[2J",
			Evidence: []*desksidev1.CheckEvidence{{Key: "k\x1b[31m", Value: "v\x07"}}, Hint: "do this"}
	}
	pass, warn := desksidev1.CheckStatus_CHECK_STATUS_PASS, desksidev1.CheckStatus_CHECK_STATUS_WARN
	fail, na := desksidev1.CheckStatus_CHECK_STATUS_FAIL, desksidev1.CheckStatus_CHECK_STATUS_UNAVAILABLE
	for _, tc := range []struct {
		statuses []desksidev1.CheckStatus
		want     int
	}{
		{[]desksidev1.CheckStatus{pass}, 0},
		{[]desksidev1.CheckStatus{pass, na}, 0},
		{[]desksidev1.CheckStatus{na}, 0},
		{[]desksidev1.CheckStatus{pass, warn, na}, 3},
		{[]desksidev1.CheckStatus{warn, fail}, 4},
		{nil, 0},
	} {
		rep := &desksidev1.CheckReport{}
		for i, s := range tc.statuses {
			rep.Results = append(rep.Results, res(string(rune('a'+i)), s))
		}
		if got := verdictCode(rep); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.statuses, got, tc.want)
		}
	}

	rep := &desksidev1.CheckReport{Overall: fail, Duration: durationpb.New(1500e6),
		Results: []*desksidev1.CheckResult{res("disk.space", pass), res("net.dns", fail), res("x", na)}}
	var plain, colored bytes.Buffer
	writeReport(&plain, rep, false, false, "")
	writeReport(&colored, rep, true, false, "")
	want := "STATUS  CHECK       SUMMARY\n" +
		"PASS    disk.space  summary of disk.space\n" +
		"FAIL    net.dns     summary of net.dns\n" +
		"N/A     x           summary of x\n" +
		"\nnet.dns: FAIL\n  k:  v\n  Hint: do this\n" +
		"\nOverall: FAIL (3 checks in 1.5s)\n"
	if plain.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", plain.String(), want)
	}
	for _, w := range []string{"\x1b[32mPASS  \x1b[0m  disk.space", "\x1b[1;31mFAIL  \x1b[0m  net.dns", "\x1b[2mN/A   \x1b[0m  x", "Overall: \x1b[1;31mFAIL\x1b[0m"} {
		if !strings.Contains(colored.String(), w) {
			t.Errorf("coloured report lacks %q:\n%q", w, colored.String())
		}
	}
	if strings.Contains(colored.String(), "\x1b[2J") || strings.Contains(colored.String(), "\x07") {
		t.Error("agent escape sequences reached the coloured report")
	}
}

func TestUseColor(t *testing.T) {
	e := &runEnv{getenv: func(string) string { return "" }}
	var buf bytes.Buffer
	if e.useColor(&buf) {
		t.Error("colour on a buffer")
	}
}
