package inventory

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// These tests read the machine they run on; they compare the collector's
// answers with what the kernel and standard tools say.

func collect(t testing.TB) *desksidev1.Inventory {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inv, err := New(nil).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestReadMatchesSystem(t *testing.T) {
	inv := collect(t)
	if testing.Verbose() {
		short := proto.Clone(inv).(*desksidev1.Inventory)
		if n := len(short.Software); n > 5 {
			short.Software = short.Software[:5]
			t.Logf("(%d software entries, first 5 shown)", n)
		}
		t.Logf("inventory:\n%s", prototext.Format(short))
	}

	t.Run("hostname", func(t *testing.T) {
		h, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		if inv.GetHostname() != h {
			t.Errorf("hostname %q, os.Hostname %q", inv.GetHostname(), h)
		}
	})

	t.Run("memory", func(t *testing.T) {
		want := memTotalFromProc(t)
		got := inv.GetMemory().GetTotalBytes()
		if diff := float64(got) - float64(want); diff > 0.01*float64(want) || -diff > 0.01*float64(want) {
			t.Errorf("memory total %d, /proc/meminfo MemTotal %d (more than 1%% apart)", got, want)
		}
	})

	t.Run("threads", func(t *testing.T) {
		got := int(inv.GetCpu().GetThreads())
		want := nproc(t)
		if got == want {
			return
		}
		// nproc counts the CPUs this process may use; when affinity or a
		// cpuset restricts it, compare with all online CPUs instead.
		if all := nproc(t, "--all"); got != all {
			t.Errorf("threads %d, nproc %d, nproc --all %d", got, want, all)
		}
	})

	t.Run("cpu", func(t *testing.T) {
		c := inv.GetCpu()
		if c.GetCores() == 0 || c.GetCores() > c.GetThreads() || c.GetSockets() == 0 || c.GetModel() == "" {
			t.Errorf("implausible cpu: %v", c)
		}
	})

	t.Run("root partition", func(t *testing.T) {
		var st unix.Statfs_t
		if err := unix.Statfs("/", &st); err != nil {
			t.Fatal(err)
		}
		want := uint64(st.Blocks) * uint64(st.Bsize)
		// Free is what df calls Avail (f_bavail), not total - used: blocks
		// reserved for root are neither. Files come and go between the
		// two reads, hence the tolerance.
		avail := uint64(st.Bavail) * uint64(st.Bsize)
		used := (uint64(st.Blocks) - uint64(st.Bfree)) * uint64(st.Bsize)
		near := func(a, b uint64) bool { return max(a, b)-min(a, b) <= 64<<20 }
		for _, p := range inv.GetPartitions() {
			if p.GetMountpoint() == "/" {
				if p.GetTotalBytes() != want {
					t.Errorf("/ total %d, statfs %d", p.GetTotalBytes(), want)
				}
				if !near(p.GetFreeBytes(), avail) {
					t.Errorf("/ free %d, statfs available (f_bavail × f_bsize) %d", p.GetFreeBytes(), avail)
				}
				if !near(p.GetUsedBytes(), used) {
					t.Errorf("/ used %d, statfs (f_blocks − f_bfree) × f_bsize %d", p.GetUsedBytes(), used)
				}
				return
			}
		}
		t.Errorf("no / partition in %v", inv.GetPartitions())
	})

	t.Run("no pseudo file systems", func(t *testing.T) {
		for _, p := range inv.GetPartitions() {
			if p.GetMountpoint() != "/" && IsPseudoFS(p.GetFstype()) {
				t.Errorf("pseudo file system reported: %v", p)
			}
		}
	})

	t.Run("dpkg software", func(t *testing.T) {
		known := installedDpkgPackage(t)
		var n int
		found := false
		for _, s := range inv.GetSoftware() {
			if s.GetSource() == SourceDpkg {
				n++
				found = found || s.GetName() == known
			}
		}
		if n == 0 || !found {
			t.Errorf("%d dpkg packages, %q among them: %v", n, known, found)
		}
	})

	t.Run("os", func(t *testing.T) {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			t.Fatal(err)
		}
		if k := unix.ByteSliceToString(u.Release[:]); inv.GetOs().GetKernel() != k {
			t.Errorf("kernel %q, uname %q", inv.GetOs().GetKernel(), k)
		}
		if a := unix.ByteSliceToString(u.Machine[:]); inv.GetOs().GetArch() != a {
			t.Errorf("arch %q, uname %q", inv.GetOs().GetArch(), a)
		}
		if inv.GetOs().GetName() == "" {
			t.Error("no OS name")
		}
	})

	t.Run("boot time", func(t *testing.T) {
		bt := inv.GetBootTime().AsTime()
		if bt.After(time.Now()) || time.Since(bt) > 10*365*24*time.Hour {
			t.Errorf("implausible boot time %v", bt)
		}
	})

	t.Run("sorted", func(t *testing.T) {
		checkSorted(t, "partitions", inv.GetPartitions(), func(p *desksidev1.Partition) string { return p.GetMountpoint() })
		checkSorted(t, "disks", inv.GetDisks(), func(d *desksidev1.Disk) string { return d.GetName() })
		checkSorted(t, "nics", inv.GetNics(), func(n *desksidev1.NetworkInterface) string { return n.GetName() })
		checkSorted(t, "software", inv.GetSoftware(), func(s *desksidev1.Software) string { return s.GetName() })
	})

	t.Run("errors name their section", func(t *testing.T) {
		for _, e := range inv.GetErrors() {
			if e.GetSection() == "" || e.GetMessage() == "" {
				t.Errorf("bad collector error %v", e)
			}
		}
	})
}

// TestReadDeterministic collects twice and expects the same inventory apart
// from collected_at. Used bytes of a partition change whenever anything
// writes to it (a concurrent build, a log line), so a pair that differs
// only there is retried, and accepted after a few tries.
func TestReadDeterministic(t *testing.T) {
	var a, b *desksidev1.Inventory
	for range 5 {
		a, b = collect(t), collect(t)
		a.CollectedAt, b.CollectedAt = nil, nil
		if proto.Equal(a, b) {
			return
		}
	}
	for _, inv := range []*desksidev1.Inventory{a, b} {
		for _, p := range inv.Partitions {
			p.UsedBytes = 0
		}
	}
	if proto.Equal(a, b) {
		t.Logf("partition used bytes changed between every pair of collections; all else equal")
		return
	}
	a.Partitions, b.Partitions = nil, nil
	a.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if w := b.ProtoReflect().Get(fd); !w.Equal(v) {
			t.Errorf("field %s differs:\n%v\n---\n%v", fd.Name(), v, w)
		}
		return true
	})
	if !proto.Equal(a, b) {
		t.Errorf("collections differ")
	}
}

func checkSorted[T any](t *testing.T, what string, s []T, key func(T) string) {
	t.Helper()
	for i := 1; i < len(s); i++ {
		if key(s[i]) < key(s[i-1]) {
			t.Errorf("%s not sorted: %q after %q", what, key(s[i]), key(s[i-1]))
		}
	}
}

func memTotalFromProc(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

func nproc(t *testing.T, args ...string) int {
	t.Helper()
	out, err := exec.Command("nproc", args...).Output()
	testkit.Need(t, "nproc", err, "install the Debian package coreutils")
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// installedDpkgPackage returns a package the dpkg database lists as
// installed, preferring bash.
func installedDpkgPackage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(dpkgStatusPath)
	testkit.Need(t, "the dpkg database", err, "run this test on Debian or a derivative, as CI does")
	first := ""
	for stanza := range strings.SplitSeq(string(b), "\n\n") {
		var name string
		installed := false
		for line := range strings.Lines(stanza) {
			line = strings.TrimRight(line, "\n")
			if v, ok := strings.CutPrefix(line, "Package: "); ok {
				name = v
			}
			if line == "Status: install ok installed" {
				installed = true
			}
		}
		if installed && name == "bash" {
			return name
		}
		if installed && first == "" {
			first = name
		}
	}
	testkit.NeedOK(t, "an installed Debian package", first != "", "the dpkg database lists none", "run this test on Debian or a derivative, as CI does")
	return first
}
