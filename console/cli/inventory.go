package cli

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

func (e *runEnv) inventoryHistory(args []string) error {
	fs := e.flags("inventory history", "Lists a device's inventory changes, newest first: hardware, OS, software\n"+
		"and network changes recorded each time the agent reported a different inventory.")
	limit := fs.Int("limit", 100, "at most `N` changes (up to 10000)")
	asJSON := fs.Bool("json", false, "print a JSON array of changes")
	id, err := parseID(fs, args)
	if err != nil {
		return err
	}
	if *limit <= 0 || *limit > 10000 {
		return errUsage(fs, "--limit must be between 1 and 10000")
	}
	resp, err := unary(e, func(ctx context.Context, cs desksidev1.ConsoleServiceClient) (*desksidev1.GetInventoryHistoryResponse, error) {
		return cs.GetInventoryHistory(ctx, &desksidev1.GetInventoryHistoryRequest{Id: id, Limit: int32(*limit)})
	})
	if err != nil {
		return err
	}
	out := e.output()
	changes := resp.GetChanges()
	switch {
	case *asJSON:
		if err := writeJSONArray(out, changes); err != nil {
			return err
		}
	case len(changes) == 0:
		fmt.Fprintf(out, "No inventory changes recorded for %s yet: changes appear once its agent reports an inventory that differs from the last.\n", clean(id))
	default:
		rows := make([][]string, 0, len(changes))
		for _, ch := range changes {
			from, to := ch.GetFrom(), ch.GetTo()
			if from == "" {
				from = "(none)"
			}
			if to == "" {
				to = "(removed)"
			}
			rows = append(rows, []string{fmtTime(ch.GetTime().AsTime()), ch.GetField(), from, "→", to})
		}
		if err := table(out, "", []string{"TIME", "FIELD", "FROM", "", "TO"}, rows); err != nil {
			return err
		}
	}
	return out.Flush()
}

const exportHelp = `
Exports every matching device with its inventory, streamed from the relay.

CSV has a header row and one row per device (columns: ` + "id, hostname, online, last_seen, os_name, os_version, kernel, arch, " +
	"manufacturer, model, serial, bios_version, cpu_model, cores, threads, memory_bytes, disk_total_bytes, disk_used_bytes, disk_free_bytes, " +
	"ip_addresses, mac_addresses, user, agent_version, software_count" + `).
Cells a spreadsheet would read as a formula get a leading single quote.
JSON is an array of {"device": ..., "inventory": ...} objects.

With -o the file is written 0600 and appears only once the export is complete.

Example:
  deskside inventory export --format csv --os windows -o fleet.csv`

// csvHeader is the CSV export's header; its order is stable.
var csvHeader = []string{
	"id", "hostname", "online", "last_seen", "os_name", "os_version", "kernel", "arch",
	"manufacturer", "model", "serial", "bios_version", "cpu_model", "cores", "threads",
	"memory_bytes", "disk_total_bytes", "disk_used_bytes", "disk_free_bytes", "ip_addresses", "mac_addresses",
	"user", "agent_version", "software_count",
}

func (e *runEnv) inventoryExport(args []string) error {
	fs := e.flags("inventory export", exportHelp)
	format := fs.String("format", "csv", "`csv` or json")
	outFile := fs.String("o", "", "write to `FILE` instead of standard output")
	var filt filterFlags
	filt.register(fs)
	if err := noArgs(fs, args); err != nil {
		return err
	}
	var write func(io.Writer, *desksidev1.ExportInventoryResponse, int) error
	var finish func(io.Writer, int) error
	switch strings.ToLower(*format) {
	case "csv":
		var cw *csv.Writer
		write = func(w io.Writer, r *desksidev1.ExportInventoryResponse, i int) error {
			if i == 0 {
				cw = csv.NewWriter(w)
				if err := cw.Write(csvHeader); err != nil {
					return err
				}
			}
			return cw.Write(csvRow(r))
		}
		finish = func(w io.Writer, n int) error {
			if n == 0 {
				cw = csv.NewWriter(w)
				if err := cw.Write(csvHeader); err != nil {
					return err
				}
			}
			cw.Flush()
			return cw.Error()
		}
	case "json":
		write = func(w io.Writer, r *desksidev1.ExportInventoryResponse, i int) error {
			if i == 0 {
				io.WriteString(w, "[")
			} else {
				io.WriteString(w, ",")
			}
			return writeJSONElement(w, r)
		}
		finish = func(w io.Writer, n int) error {
			s := "\n]\n"
			if n == 0 {
				s = "[]\n"
			}
			_, err := io.WriteString(w, s)
			return err
		}
	default:
		return errUsage(fs, "--format must be csv or json, not %q", clean(*format))
	}
	req, err := filt.request(fs)
	if err != nil {
		return err
	}

	c, _, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	// No deadline: a large fleet takes as long as it takes; Ctrl-C cancels.
	stream, err := c.client.ExportInventory(e.ctx, &desksidev1.ExportInventoryRequest{Filter: req})
	if err != nil {
		return c.explain(err)
	}
	n := 0
	export := func(w io.Writer) error {
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return c.explain(err)
			}
			if err := write(w, r, n); err != nil {
				return err
			}
			n++
		}
		return finish(w, n)
	}
	if *outFile == "" || *outFile == "-" {
		out := e.output()
		if err := export(out); err != nil {
			return err
		}
		return out.Flush()
	}
	if err := writeAtomic(*outFile, 0o600, export); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stderr, "Exported %d devices to %s.\n", n, *outFile)
	return err
}

// csvRow is one device's CSV row; every cell goes through csvCell.
func csvRow(r *desksidev1.ExportInventoryResponse) []string {
	d, inv := r.GetDevice(), r.GetInventory()
	or := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	orN := func(a, b uint64) uint64 {
		if a != 0 {
			return a
		}
		return b
	}
	num := func(n uint64) string { return strconv.FormatUint(n, 10) }
	lastSeen := ""
	if d.GetLastSeen() != nil {
		lastSeen = d.GetLastSeen().AsTime().UTC().Format(time.RFC3339)
	}
	ips, macs := addresses(inv)
	row := []string{
		d.GetId(),
		d.GetHostname(),
		strconv.FormatBool(d.GetOnline()),
		lastSeen,
		or(inv.GetOs().GetName(), d.GetOs()),
		inv.GetOs().GetVersion(),
		inv.GetOs().GetKernel(),
		or(inv.GetOs().GetArch(), d.GetArch()),
		inv.GetSystem().GetManufacturer(),
		or(inv.GetSystem().GetModel(), d.GetModel()),
		inv.GetSystem().GetSerial(),
		inv.GetBios().GetVersion(),
		or(inv.GetCpu().GetModel(), d.GetCpuModel()),
		num(uint64(inv.GetCpu().GetCores())),
		num(uint64(inv.GetCpu().GetThreads())),
		num(orN(inv.GetMemory().GetTotalBytes(), d.GetMemoryBytes())),
		num(d.GetDiskTotalBytes()),
		num(d.GetDiskUsedBytes()),
		num(d.GetDiskFreeBytes()),
		strings.Join(ips, " "),
		strings.Join(macs, " "),
		d.GetUser(),
		d.GetAgentVersion(),
		strconv.Itoa(len(inv.GetSoftware())),
	}
	for i, c := range row {
		row[i] = csvCell(c)
	}
	return row
}

// addresses lists a device's IP addresses (without loopback) and MAC
// addresses (without empty ones), each once, in reported order.
func addresses(inv *desksidev1.Inventory) (ips, macs []string) {
	for _, n := range inv.GetNics() {
		for _, a := range n.GetAddresses() {
			a = strings.TrimSpace(a)
			ip := a
			if p, err := netip.ParsePrefix(a); err == nil {
				ip = p.Addr().String()
			}
			if addr, err := netip.ParseAddr(ip); err == nil && addr.IsLoopback() {
				continue
			}
			if ip != "" && !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
		if m := strings.TrimSpace(n.GetMac()); m != "" && strings.Trim(m, "0:-") != "" && !slices.Contains(macs, m) {
			macs = append(macs, m)
		}
	}
	return ips, macs
}
