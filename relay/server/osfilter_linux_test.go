package server_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/internal/testkit"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// osRelease reads the KEY=value pairs of /etc/os-release (values
// unquoted), as the test's own, independent reading of this machine.
func osRelease(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		b, err = os.ReadFile("/usr/lib/os-release")
	}
	testkit.Need(t, "/etc/os-release", err, "every systemd-era distribution has it (Debian: base-files)")
	kv := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	return kv
}

// TestOSFilterMatchesThisMachine runs a real agent (real inventory
// collectors) and lists the fleet with the OS filters a technician types
// for this machine: its distribution id from /etc/os-release ("debian"),
// that id with the release ("debian 12"), the release alone, and "linux".
// Each finds the device; another OS does not. The fleet shows the
// distribution and its version, not "linux".
func TestOSFilterMatchesThisMachine(t *testing.T) {
	rel := osRelease(t)
	distro, release := rel["ID"], rel["VERSION_ID"]
	testkit.NeedOK(t, "an ID in /etc/os-release", distro != "", "the file names no distribution", "Debian's base-files sets ID=debian")
	r := startRelay(t, t.TempDir(), "127.0.0.1:0", nil)
	st := r.mustEnroll(t)
	runAgent(t, st, agentOpts{inv: inventory.New(discardLogger()), sampler: fakeSampler{}, interval: time.Second})
	cs, ctx := r.admin(t)
	var dev *desksidev1.Device
	checkFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
		if err != nil {
			return err
		}
		// The device row is read before the inventory: wait for the
		// summary the inventory brought, not only for the inventory.
		if d.GetInventory() == nil || d.GetDevice().GetOsDisplay() == "" {
			return errNotYet
		}
		dev = d.GetDevice()
		return nil
	})
	t.Logf("os %q, name %q, version %q, family %q, display %q", dev.GetOs(), dev.GetOsName(), dev.GetOsVersion(), dev.GetOsFamily(), dev.GetOsDisplay())
	if !strings.Contains(strings.ToLower(dev.GetOsDisplay()), distro) || (release != "" && !strings.Contains(dev.GetOsDisplay(), release)) {
		t.Errorf("fleet shows OS %q; want the distribution %q and its release %q", dev.GetOsDisplay(), distro, release)
	}

	filters := []string{distro, strings.ToUpper(distro), "linux"}
	if release != "" {
		filters = append(filters, distro+" "+release, release)
	}
	for _, f := range filters {
		for _, req := range []*desksidev1.ListDevicesRequest{{Os: f}, {Query: f}} {
			resp, err := cs.ListDevices(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetDevices()) != 1 || resp.GetDevices()[0].GetId() != st.DeviceID {
				t.Errorf("ListDevices(%v) found %d devices, want this machine", req, len(resp.GetDevices()))
			}
		}
	}
	resp, err := cs.ListDevices(ctx, &desksidev1.ListDevicesRequest{Os: "windows"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetDevices()) != 0 {
		t.Errorf("os=windows matched this %s machine", distro)
	}
}
