package diag

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// maxSMARTDevices bounds the disks queried.
const maxSMARTDevices = 16

// smartctl exit status bits (smartctl(8), "RETURN VALUES").
const (
	smartOpenFailed  = 1 << 1
	smartCmdFailed   = 1 << 2
	smartFailing     = 1 << 3
	smartPrefail     = 1 << 4
	smartPastPrefail = 1 << 5
)

// smartDevice is one line of smartctl --scan-open.
type smartDevice struct{ path, typ string }

var (
	// smartPathRe and smartTypeRe bound what is passed back to smartctl.
	smartPathRe = regexp.MustCompile(`^(/dev/[A-Za-z0-9._/-]+|[A-Za-z0-9._:,\\/-]+)$`)
	smartTypeRe = regexp.MustCompile(`^[A-Za-z0-9,_+-]+$`)
)

// parseSMARTScan parses smartctl --scan-open: "/dev/sda -d sat # /dev/sda
// [SAT], ATA device". Comment lines (devices that failed to open) and
// anything unexpected are skipped.
func parseSMARTScan(b []byte) []smartDevice {
	var out []smartDevice
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 || !smartPathRe.MatchString(f[0]) || strings.HasPrefix(f[0], "-") {
			continue
		}
		d := smartDevice{path: f[0]}
		if len(f) >= 3 && f[1] == "-d" && smartTypeRe.MatchString(f[2]) {
			d.typ = f[2]
		}
		out = append(out, d)
	}
	return out
}

// smartHealth is what is read of smartctl -H -j.
type smartHealth struct {
	Device struct {
		Name string `json:"name"`
	} `json:"device"`
	ModelName   string `json:"model_name"`
	SmartStatus *struct {
		Passed bool `json:"passed"`
	} `json:"smart_status"`
	Smartctl struct {
		ExitStatus int `json:"exit_status"`
		Messages   []struct {
			String   string `json:"string"`
			Severity string `json:"severity"`
		} `json:"messages"`
	} `json:"smartctl"`
}

// smartVerdict is one disk's health.
type smartVerdict struct {
	device string
	status string // passed, FAILING, warning, unknown
	detail string
}

// parseSMARTHealth reads one disk's smartctl -H -j output and exit code.
func parseSMARTHealth(dev string, out []byte, exit int) smartVerdict {
	v := smartVerdict{device: dev, status: "unknown"}
	var h smartHealth
	if err := json.Unmarshal(out, &h); err != nil {
		v.detail = "unreadable smartctl output"
		return v
	}
	if h.ModelName != "" {
		v.detail = h.ModelName
	}
	var msgs []string
	for _, m := range h.Smartctl.Messages {
		msgs = append(msgs, m.String)
	}
	if h.Smartctl.ExitStatus != 0 {
		exit = h.Smartctl.ExitStatus
	}
	switch {
	case exit&smartFailing != 0 || h.SmartStatus != nil && !h.SmartStatus.Passed:
		v.status = "FAILING"
	case exit&smartOpenFailed != 0:
		v.status = "unknown"
		msgs = append([]string{"cannot open the device"}, msgs...)
	case exit&(smartPrefail|smartPastPrefail) != 0:
		v.status = "warning"
		msgs = append(msgs, "attributes at or past their thresholds")
	case h.SmartStatus != nil && h.SmartStatus.Passed:
		v.status = "passed"
	case exit&smartCmdFailed != 0:
		msgs = append(msgs, "SMART command failed")
	}
	if len(msgs) > 0 {
		v.detail = strings.TrimPrefix(v.detail+"; "+strings.Join(msgs, "; "), "; ")
	}
	return v
}

func checkSMART(ctx context.Context, e *checkEnv) *result {
	r := new(result)
	scan, err := e.runTool(ctx, "smartctl", "--scan-open")
	if errors.Is(err, ErrToolNotFound) {
		return r.unavailable("smartctl is not installed (apt install smartmontools)")
	}
	if err != nil {
		return r.unavailable("smartctl --scan-open: " + firstLine(err.Error()))
	}
	devs := parseSMARTScan(scan.stdout)
	if len(devs) == 0 {
		if msg := firstLine(string(scan.stderr)); msg != "" {
			r.add("smartctl", msg)
		}
		return r.unavailable("smartctl found no disk it can query (virtual machine, USB bridge, or the agent lacks root)")
	}
	if len(devs) > maxSMARTDevices {
		r.addf("disks", "%d found, the first %d checked", len(devs), maxSMARTDevices)
		devs = devs[:maxSMARTDevices]
	}
	var verdicts []smartVerdict
	for _, d := range devs {
		args := []string{"-H", "-j"}
		if d.typ != "" {
			args = append(args, "-d", d.typ)
		}
		args = append(args, "--", d.path)
		out, err := e.runTool(ctx, "smartctl", args...)
		if err != nil {
			verdicts = append(verdicts, smartVerdict{device: d.path, status: "unknown", detail: firstLine(err.Error())})
			continue
		}
		verdicts = append(verdicts, parseSMARTHealth(d.path, out.stdout, out.exitCode))
	}
	return evalSMART(r, verdicts)
}

// evalSMART decides disk.smart: a failing disk fails, attributes past
// their thresholds warn, no disk with a verdict is unavailable.
func evalSMART(r *result, vs []smartVerdict) *result {
	var failing, warning []string
	known := 0
	for _, v := range vs {
		r.add(v.device, strings.TrimSuffix(v.status+": "+v.detail, ": "))
		switch v.status {
		case "FAILING":
			failing = append(failing, v.device)
		case "warning":
			warning = append(warning, v.device)
		}
		if v.status != "unknown" {
			known++
		}
	}
	switch {
	case len(failing) > 0:
		return r.fail(fmt.Sprintf("disk %s reports failing health", listNames(failing, 3)),
			"Back up the user's data now and plan the disk's replacement: SMART predicts a failure.")
	case len(warning) > 0:
		return r.warn(fmt.Sprintf("disk %s has worn or degraded attributes", listNames(warning, 3)),
			"Make sure backups are current and watch the disk; replace it if the attributes keep degrading.")
	case known == 0:
		return r.unavailable("smartctl could not read any disk's health (the agent may need root)")
	}
	return r.pass(fmt.Sprintf("%s healthy", plural(known, "disk", "disks")))
}
