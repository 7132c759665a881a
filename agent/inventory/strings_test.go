package inventory

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/proto/wire"
)

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Samsung SSD 980 PRO 1TB \n", "Samsung SSD 980 PRO 1TB"},
		{"ABC\x00\x00\x00", "ABC"},
		{"\x00  padded\x00 ", "padded"},
		{"tab\tand\nnewline", "tab and newline"},
		{"bell\x07", "bell"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := clean(strings.Repeat("é", maxStringBytes))
	if len(long) > maxStringBytes || !utf8.ValidString(long) {
		t.Errorf("long string: %d bytes, valid %v", len(long), utf8.ValidString(long))
	}
}

func TestRealValue(t *testing.T) {
	for in, want := range map[string]string{
		"To Be Filled By O.E.M.":               "",
		"Default string":                       "",
		" 0 ":                                  "",
		"PF2ABCDE":                             "PF2ABCDE",
		"00000000-0000-0000-0000-000000000000": "",
	} {
		if got := realValue(in); got != want {
			t.Errorf("realValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsPseudoFS(t *testing.T) {
	for fs, want := range map[string]bool{
		"proc": true, "sysfs": true, "cgroup2": true, "tmpfs": true, "squashfs": true, "overlay": true,
		"devfs": true, "autofs": true, "fuse.gvfsd-fuse": true, " Proc ": true,
		"ext4": false, "xfs": false, "btrfs": false, "vfat": false, "ntfs3": false, "apfs": false,
		"nfs4": false, "fuseblk": false, "zfs": false, "": false,
	} {
		if got := IsPseudoFS(fs); got != want {
			t.Errorf("IsPseudoFS(%q) = %v, want %v", fs, got, want)
		}
	}
	if !keepMount("/", "overlay") || keepMount("/proc", "proc") || !keepMount("/home", "ext4") {
		t.Error("keepMount")
	}
}

func TestTruncateLists(t *testing.T) {
	inv := &desksidev1.Inventory{
		Software: []*desksidev1.Software{{Name: "a"}, {Name: "b"}, {Name: "c"}},
		Nics:     []*desksidev1.NetworkInterface{{Name: "eth0", Addresses: []string{"1", "2", "3", "4"}}},
	}
	caps := wire.Caps{DefaultList: 100, Lists: map[protoreflect.FullName]int{
		"deskside.v1.Inventory.software":         2,
		"deskside.v1.NetworkInterface.addresses": 3,
	}}
	cuts := truncateLists(inv.ProtoReflect(), caps)
	if len(inv.Software) != 2 || inv.Software[1].Name != "b" || len(inv.Nics[0].Addresses) != 3 {
		t.Errorf("not truncated: %v", inv)
	}
	if len(cuts) != 2 || !strings.Contains(cuts[0]+cuts[1], "software: 3 entries, truncated to 2") {
		t.Errorf("cuts %q", cuts)
	}
}
