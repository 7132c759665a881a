package cli

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// filterFlags are the device filters shared by `devices list` and
// `inventory export`.
type filterFlags struct {
	hostname, os    string
	online, offline bool
	revoked         bool
}

func (f *filterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.hostname, "hostname", "", "only hostnames containing `S` (case-insensitive)")
	fs.StringVar(&f.os, "os", "", "only devices whose OS (distribution, version, family or \"linux\") contains `S` (case-insensitive), e.g. debian or \"Debian 12\"")
	fs.BoolVar(&f.online, "online", false, "only devices connected now")
	fs.BoolVar(&f.offline, "offline", false, "only devices not connected now")
	fs.BoolVar(&f.revoked, "include-revoked", false, "include revoked devices")
}

func (f *filterFlags) request(fs *flag.FlagSet) (*desksidev1.ListDevicesRequest, error) {
	if f.online && f.offline {
		return nil, errUsage(fs, "pass --online or --offline, not both")
	}
	req := &desksidev1.ListDevicesRequest{Hostname: f.hostname, Os: f.os, IncludeRevoked: f.revoked}
	switch {
	case f.online:
		req.Online = proto.Bool(true)
	case f.offline:
		req.Online = proto.Bool(false)
	}
	return req, nil
}

func (f *filterFlags) any() bool {
	return f.hostname != "" || f.os != "" || f.online || f.offline
}

const devicesListHelp = `
Lists devices, ordered by hostname. Without --all, shows one page of
--limit devices and says on standard error when there are more.

Examples:
  deskside devices list --os windows --offline
  deskside devices list --all --json > fleet.json`

func (e *runEnv) devicesList(args []string) error {
	fs := e.flags("devices list", devicesListHelp)
	var filt filterFlags
	filt.register(fs)
	all := fs.Bool("all", false, "list every matching device, page by page")
	limit := fs.Int("limit", 100, "devices per page (the relay allows at most 1000)")
	asJSON := fs.Bool("json", false, "print a JSON array of devices")
	if err := noArgs(fs, args); err != nil {
		return err
	}
	if *limit <= 0 || *limit > 1000 {
		return errUsage(fs, "--limit must be between 1 and 1000")
	}
	req, err := filt.request(fs)
	if err != nil {
		return err
	}
	req.PageSize = int32(*limit)

	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	var (
		devs  []*desksidev1.Device
		total int64
	)
	for {
		ctx, cancel := e.rpcContext()
		resp, err := c.client.ListDevices(ctx, req)
		cancel()
		if err != nil {
			return c.explain(err)
		}
		devs = append(devs, resp.GetDevices()...)
		total = resp.GetTotal()
		next := resp.GetNextPageToken()
		if !*all || next == "" || next == req.GetPageToken() || len(resp.GetDevices()) == 0 {
			break
		}
		req.PageToken = next
	}

	out := e.output()
	switch {
	case *asJSON:
		if err := writeJSONArray(out, devs); err != nil {
			return err
		}
	case len(devs) == 0 && filt.any():
		fmt.Fprintln(out, "No devices match the filter.")
	case len(devs) == 0:
		fmt.Fprintln(out, "No devices enrolled yet. Create an enrollment token with `deskside token create` "+
			"and run the command it prints on a device.")
	default:
		now := e.now()
		rows := make([][]string, 0, len(devs))
		for _, d := range devs {
			state := "no"
			switch {
			case d.GetRevoked():
				state = "revoked"
			case d.GetOnline():
				state = "yes"
			}
			seen := "never"
			if d.GetLastSeen() != nil {
				seen = ago(now, d.GetLastSeen().AsTime())
			}
			rows = append(rows, []string{
				d.GetId(), short(d.GetHostname(), 40), short(cmp.Or(d.GetOsDisplay(), osArch(d.GetOs(), d.GetArch())), 30), state, seen,
				short(d.GetAgentVersion(), 16), short(d.GetModel(), 32), sizeOrDash(d.GetMemoryBytes()), sizeOrDash(d.GetDiskFreeBytes()),
				cmpOrDash(endpointMarker(d.GetEndpointTrust())),
			})
		}
		if err := table(out, "", []string{"ID", "HOSTNAME", "OS", "ONLINE", "LAST SEEN", "AGENT", "MODEL", "RAM", "DISK FREE", "REFUSES"}, rows); err != nil {
			return err
		}
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if !*all && int64(len(devs)) < total {
		fmt.Fprintf(e.stderr, "Showing %d of %d devices: pass --all to list them all, or narrow the list with --hostname, --os or --online.\n",
			len(devs), total)
	}
	return nil
}

func osArch(os, arch string) string {
	if arch == "" {
		return os
	}
	return strings.TrimSpace(os + " " + arch)
}

// osLine is a device's operating system as `devices show` prints it:
// the distribution the inventory names, with the agent's platform
// ("Debian 12.11 (linux amd64)"), or the platform alone before the first
// inventory.
func osLine(d *desksidev1.Device) string {
	plat := osArch(d.GetOs(), d.GetArch())
	if d.GetOsDisplay() == "" {
		return plat
	}
	if plat == "" {
		return d.GetOsDisplay()
	}
	return d.GetOsDisplay() + " (" + plat + ")"
}

func (e *runEnv) devicesShow(args []string) error {
	fs := e.flags("devices show", "Shows a device: its summary, its inventory section by section, and its latest health sample.")
	allSoftware := fs.Bool("software", false, "list all installed software, not only the first entries")
	asJSON := fs.Bool("json", false, "print the device, inventory and health as JSON")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	resp, err := unary(e, func(ctx context.Context, cs desksidev1.ConsoleServiceClient) (*desksidev1.GetDeviceResponse, error) {
		return cs.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: id})
	})
	if err != nil {
		return err
	}
	out := e.output()
	if *asJSON {
		if err := writeJSON(out, resp); err != nil {
			return err
		}
	} else {
		writeDevice(out, resp, e.now(), *allSoftware)
	}
	return out.Flush()
}

func (e *runEnv) devicesPing(args []string) error {
	fs := e.flags("devices ping", "Sends a ping through the relay to a connected agent and prints the round trip.")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	resp, err := unary(e, func(ctx context.Context, cs desksidev1.ConsoleServiceClient) (*desksidev1.PingDeviceResponse, error) {
		return cs.PingDevice(ctx, &desksidev1.PingDeviceRequest{Id: id})
	})
	if err != nil {
		return err
	}
	rt := resp.GetRoundTrip().AsDuration()
	_, err = fmt.Fprintf(e.stdout, "%s: round trip %s (CLI → relay → agent and back)\n", clean(id), roundDuration(rt))
	return err
}

// roundDuration keeps three significant-ish digits: 1.23ms, 45.6ms, 1.2s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Millisecond)
	}
}

func (e *runEnv) devicesRefresh(args []string) error {
	fs := e.flags("devices refresh", "Asks a connected agent to collect and send its inventory now, and waits for it (up to 30s).")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	resp, err := unary(e, func(ctx context.Context, cs desksidev1.ConsoleServiceClient) (*desksidev1.RefreshInventoryResponse, error) {
		return cs.RefreshInventory(ctx, &desksidev1.RefreshInventoryRequest{Id: id})
	})
	if err != nil {
		return err
	}
	inv := resp.GetInventory()
	_, err = fmt.Fprintf(e.stdout, "Inventory of %s (%s) refreshed: collected %s, %d software packages, %d disks, %d network interfaces.\n"+
		"See it with `deskside devices show %s`.\n",
		clean(id), clean(inv.GetHostname()), fmtTime(inv.GetCollectedAt().AsTime()),
		len(inv.GetSoftware()), len(inv.GetDisks()), len(inv.GetNics()), clean(id))
	return err
}

func (e *runEnv) devicesRevoke(args []string) error {
	fs := e.flags("devices revoke", "Revokes a device's certificate and disconnects its agent (admin only).\n"+
		"The agent can no longer connect; to bring the machine back, enroll it again with a new token.")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := e.rpcContext()
	defer cancel()
	if _, err := c.client.RevokeDevice(ctx, &desksidev1.RevokeDeviceRequest{Id: id}); err != nil {
		return c.explain(err)
	}
	_, err = fmt.Fprintf(e.stdout, "Revoked %s: its agent is disconnected and can no longer connect.\n"+
		"To bring the machine back, enroll it again with a token from `deskside token create`.\n", clean(id))
	return err
}
