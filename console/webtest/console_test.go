package webtest

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
	"github.com/deskside/deskside/relay/server/servertest"
)

var errNotYet = errors.New("not yet")

// screenshot writes a PNG of the page to $DESKSIDE_SCREENSHOTS/name (the
// README's images come from `make screenshots`), or to the test's temp dir.
func (c *console) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("DESKSIDE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	c.run(t, 5*time.Second, chromedp.Sleep(300*time.Millisecond)) // let charts finish drawing
	png := value(t, c, 20*time.Second, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func rowSel(id string) string { return fmt.Sprintf(`[data-testid=device-row][data-device-id=%q]`, id) }

func row(id string, extra string) chromedp.CSS { return css(rowSel(id) + extra) }

// TestConsoleWithRealAgent walks the console against a real relay and a
// real agent: sign in, see the device, open it, read the RAM total the
// store has, filter, export CSV, watch the device go offline, sign out.
func TestConsoleWithRealAgent(t *testing.T) {
	c := startConsole(t)
	log := servertest.DiscardLogger()
	st := c.relay.Enroll(t, "e2e-workstation")
	agent := servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inventory.New(log), Health: health.NewSampler(log, health.Options{}),
		HealthInterval: 500 * time.Millisecond, Hostname: "e2e-workstation",
	})
	// A second, offline device to filter against.
	other := c.relay.Enroll(t, "finance-laptop")

	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second, chromedp.WaitVisible(row(st.DeviceID, `[data-online=true]`)))
	c.run(t, 10*time.Second, chromedp.WaitVisible(row(other.DeviceID, "")))
	c.screenshot(t, "fleet.png")

	// Device page: the RAM total is the store's.
	cs, ctx := c.relay.Admin(t)
	d, err := cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: st.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	c.run(t, 20*time.Second,
		chromedp.Click(row(st.DeviceID, ` a`)),
		chromedp.WaitVisible(css(`[data-testid=device-ram-total]`)),
	)
	ram := value(t, c, 10*time.Second, chromedp.AttributeValue(css(`[data-testid=device-ram-total]`), "data-bytes"))
	if want := strconv.FormatUint(d.GetInventory().GetMemory().GetTotalBytes(), 10); ram.Value != want {
		t.Fatalf("device page RAM %q, store %s", ram.Value, want)
	}
	c.screenshot(t, "device.png")

	// Filter the fleet.
	c.run(t, 20*time.Second,
		chromedp.Navigate(c.url+"#/fleet"),
		chromedp.WaitVisible(row(other.DeviceID, "")),
		chromedp.SendKeys(css(`[data-testid=fleet-search]`), "finance"),
		chromedp.WaitNotPresent(row(st.DeviceID, "")),
		chromedp.WaitVisible(row(other.DeviceID, "")),
	)
	// Clear the search: both are back.
	c.run(t, 10*time.Second,
		chromedp.Evaluate[chromedp.Void](`(() => { const e = document.querySelector('[data-testid=fleet-search]'); e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); })()`),
		chromedp.WaitVisible(row(st.DeviceID, "")),
	)

	// Export CSV and check its rows.
	dl := t.TempDir()
	c.run(t, 30*time.Second,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl,
			})
			return err
		}),
		chromedp.Click(css(`[data-testid=export-open]`)),
		chromedp.WaitVisible(css(`[data-testid=export-format]`)),
		chromedp.SetValue(css(`[data-testid=export-format]`), "csv"),
		chromedp.Click(css(`[data-testid=export-submit]`)),
	)
	var file string
	servertest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		m, _ := filepath.Glob(filepath.Join(dl, "*.csv"))
		if len(m) == 0 {
			return errNotYet
		}
		file = m[0]
		return nil
	})
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatalf("exported CSV does not parse: %v", err)
	}
	if len(rows) != 3 {
		t.Fatalf("CSV has %d rows, want header + 2 devices: %v", len(rows), rows)
	}
	joined := fmt.Sprint(rows[1:])
	for _, id := range []string{st.DeviceID, other.DeviceID} {
		if !strings.Contains(joined, id) && !strings.Contains(joined, map[string]string{st.DeviceID: "e2e-workstation", other.DeviceID: "finance-laptop"}[id]) {
			t.Errorf("CSV lacks device %s: %v", id, rows)
		}
	}

	// The agent stops: the row goes offline without a reload.
	// A marker on window survives only if the page is not reloaded.
	c.run(t, 5*time.Second, chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))
	agent.Stop()
	c.run(t, 10*time.Second, chromedp.WaitVisible(row(st.DeviceID, `[data-online=false]`)))
	if !value(t, c, 5*time.Second, chromedp.Evaluate[bool](`window.__sameDocument === true`)) {
		t.Fatal("the page reloaded to show the device offline")
	}

	// Sign out.
	c.run(t, 10*time.Second, chromedp.Click(css(`[data-testid=signout]`)), chromedp.WaitVisible(css(`[data-testid=login-name]`)))
}

const payload = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>`

// hostileInventory reports the payload in every string it has.
type hostileInventory struct{}

func (hostileInventory) Read(context.Context) (*desksidev1.Inventory, error) {
	long := payload + strings.Repeat("W", 5000)
	inv := &desksidev1.Inventory{
		Hostname: payload,
		Os:       &desksidev1.OperatingSystem{Name: payload, Version: payload, Build: payload, Kernel: payload, Arch: payload, Family: payload},
		Cpu:      &desksidev1.Cpu{Model: long, Vendor: payload, Cores: 4, Threads: 8},
		Memory:   &desksidev1.Memory{TotalBytes: 8 << 30},
		Partitions: []*desksidev1.Partition{
			{Device: payload, Mountpoint: "/", Fstype: payload, TotalBytes: 100 << 30, UsedBytes: 95 << 30, FreeBytes: 5 << 30},
			{Device: long, Mountpoint: payload, Fstype: payload, TotalBytes: 1 << 30},
		},
		Disks:     []*desksidev1.Disk{{Name: payload, Model: long, Serial: payload, SizeBytes: 100 << 30}},
		Nics:      []*desksidev1.NetworkInterface{{Name: payload, Mac: payload, Addresses: []string{payload, long}}},
		System:    &desksidev1.SystemInfo{Manufacturer: payload, Model: long, Serial: payload, Uuid: payload},
		Bios:      &desksidev1.Bios{Vendor: payload, Version: payload, Date: payload},
		Users:     []*desksidev1.LoggedInUser{{Name: payload, Terminal: payload, Host: payload}},
		Software:  []*desksidev1.Software{{Name: payload, Version: payload, Source: payload}, {Name: long, Version: "1"}},
		Gpus:      []*desksidev1.Gpu{{Vendor: payload, Model: payload, Driver: payload}},
		Batteries: []*desksidev1.Battery{{Name: payload, State: payload}},
		Errors:    []*desksidev1.CollectorError{{Section: payload, Message: long}},
	}
	return proto.Clone(inv).(*desksidev1.Inventory), nil
}

type hostileHealth struct{}

func (hostileHealth) Sample(context.Context) (*desksidev1.HealthSample, error) {
	return &desksidev1.HealthSample{
		Time: timestamppb.Now(), CpuPercent: 50, MemTotalBytes: 8 << 30, MemUsedBytes: 4 << 30,
		Mounts:       []*desksidev1.MountUsage{{Mountpoint: payload, UsedPercent: 95}},
		TopCpu:       []*desksidev1.ProcessUsage{{Pid: 1, Name: payload, User: payload, CpuPercent: 50}},
		TopMemory:    []*desksidev1.ProcessUsage{{Pid: 1, Name: payload, User: payload}},
		Temperatures: []*desksidev1.Temperature{{Sensor: payload, Celsius: 50}},
	}, nil
}

// TestHostileAgentData: an agent that reports HTML and script in every
// string cannot run script in the console, and its text shows as text.
func TestHostileAgentData(t *testing.T) {
	c := startConsole(t)
	st := c.relay.Enroll(t, payload)
	servertest.RunAgent(t, st, servertest.AgentOptions{Inventory: hostileInventory{}, Health: hostileHealth{}, Hostname: payload, HealthInterval: 200 * time.Millisecond})
	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second, chromedp.WaitVisible(row(st.DeviceID, `[data-online=true]`)))
	check := func(where string) {
		t.Helper()
		c.run(t, 5*time.Second, chromedp.Sleep(500*time.Millisecond)) // give any injected handler a chance to fire
		pwned := value(t, c, 5*time.Second, chromedp.Evaluate[bool](`window.__pwned === 1`))
		text := value(t, c, 5*time.Second, chromedp.Evaluate[string](`document.body.innerText`))
		width := value(t, c, 5*time.Second, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
		if pwned {
			t.Fatalf("%s: agent-reported script ran", where)
		}
		if !strings.Contains(text, `<script>window.__pwned=1</script>`) {
			t.Errorf("%s: the payload is not shown as text", where)
		}
		if width > 1300 {
			t.Errorf("%s: layout broken: page is %d px wide at a 1280 px window", where, width)
		}
	}
	check("fleet")
	c.run(t, 20*time.Second,
		chromedp.Click(row(st.DeviceID, ` a`)),
		chromedp.WaitVisible(css(`[data-testid=device-ram-total]`)),
	)
	check("device page")
}
