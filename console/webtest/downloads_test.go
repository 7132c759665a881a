package webtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/agent/enroll"
	"github.com/deskside/deskside/relay/server"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestAddDevices opens the fleet's Add devices dialog against a real relay
// serving a .deb and an MSI: the packages with their size and SHA-256, an
// enrollment token created there, the install commands holding the relay's
// agent address, the token and the hash; the page fetches the package the
// command names and gets the same bytes. With the files gone the dialog
// says how to add them, without a restart.
func TestAddDevices(t *testing.T) {
	dir := t.TempDir()
	deb := bytes.Repeat([]byte("deskside agent package "), 40_000)
	debName := "deskside-agent_1.4.0+3.g1a2b3c4_amd64.deb"
	if err := os.WriteFile(filepath.Join(dir, debName), deb, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deskside-agent.msi"), []byte("msi"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(deb)
	debSum := hex.EncodeToString(sum[:])
	c := startConsoleWith(t, func(cfg *server.Config) { cfg.DownloadsDir = dir })
	_, agentPort, _ := net.SplitHostPort(c.relay.Addr)
	c.signIn(t, "admin", servertest.AdminPassword)

	debCmd := css(`[data-testid=add-cmd][data-kind=deb] code`)
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=add-open]`)),
		chromedp.WaitVisible(css(`[data-testid=add-dialog]`)),
		chromedp.WaitVisible(debCmd),
		chromedp.WaitVisible(css(`[data-testid=add-cmd][data-kind=msi]`)),
	)
	shown := value(t, c, 10*time.Second, chromedp.Text(css(`[data-testid=add-file][data-name="`+debName+`"]`)))
	if !strings.Contains(shown, debSum) || !strings.Contains(shown, "898 KiB") {
		t.Errorf("the package row shows %q: want its SHA-256 %s and size", shown, debSum)
	}
	cmd := value(t, c, 10*time.Second, chromedp.Text(debCmd))
	for _, want := range []string{"DESKSIDE_RELAY=127.0.0.1:" + agentPort, "DESKSIDE_TOKEN=TOKEN dpkg -i " + debName, debSum + "  " + debName, "--cacert deskside-ca.pem"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("the .deb command lacks %q:\n%s", want, cmd)
		}
	}

	// An admin creates a token in the dialog; the commands then hold it.
	c.run(t, 20*time.Second,
		chromedp.SetValue(css(`[data-testid=add-token-uses]`), "5"),
		chromedp.Click(css(`[data-testid=add-token-create]`)),
		chromedp.WaitVisible(css(`[data-testid=add-token-value]`)),
	)
	token := value(t, c, 10*time.Second, chromedp.Text(css(`[data-testid=add-token-value]`)))
	if strings.Count(token, ".") < 2 {
		t.Fatalf("token shown: %q", token)
	}
	cmd = value(t, c, 10*time.Second, chromedp.Text(debCmd))
	if !strings.Contains(cmd, "DESKSIDE_TOKEN="+token+" dpkg -i") {
		t.Errorf("the .deb command lacks the new token %s:\n%s", token, cmd)
	}
	msiCmd := value(t, c, 10*time.Second, chromedp.Text(css(`[data-testid=add-cmd][data-kind=msi] code`)))
	if !strings.Contains(msiCmd, "msiexec /i deskside-agent.msi RELAY=127.0.0.1:"+agentPort+" TOKEN="+token+" /qn") {
		t.Errorf("the MSI command:\n%s", msiCmd)
	}
	// The token enrolls: it is a real one of this relay.
	if _, err := enroll.Enroll(context.Background(), enroll.Options{Relay: c.relay.Addr, Token: token, StateDir: t.TempDir(),
		Hostname: "from-dialog", Version: "test", MachineID: servertest.NewMachineID()}); err != nil {
		t.Errorf("the token the dialog created does not enroll: %v", err)
	}
	c.screenshot(t, "add-devices.png")
	c.run(t, 10*time.Second, chromedp.ScrollIntoView(css(`[data-testid=add-cmd][data-kind=deb]`)))
	c.screenshot(t, "add-devices-commands.png")

	// The URL in the command serves the package the row describes.
	got := value(t, c, 20*time.Second, chromedp.Evaluate[string](`(async () => {
		const u = document.querySelector('[data-testid=add-file][data-name="`+debName+`"] a').href;
		const b = new Uint8Array(await (await fetch(u)).arrayBuffer());
		const d = new Uint8Array(await crypto.subtle.digest('SHA-256', b));
		return Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
	})()`, chromedp.EvalAwaitPromise))
	if got != debSum {
		t.Errorf("the page fetched a package hashing to %s, want %s", got, debSum)
	}

	// No packages: the dialog names the next step.
	os.Remove(filepath.Join(dir, debName))
	os.Remove(filepath.Join(dir, "deskside-agent.msi"))
	c.run(t, 20*time.Second,
		chromedp.Click(css(`[data-testid=add-close]`)),
		chromedp.WaitNotPresent(css(`[data-testid=add-dialog]`)),
		chromedp.Click(css(`[data-testid=add-open]`)),
		chromedp.WaitVisible(css(`[data-testid=add-packages-empty]`)),
	)
	empty := value(t, c, 10*time.Second, chromedp.Text(css(`[data-testid=add-packages-empty]`)))
	if !strings.Contains(empty, "make packages") || !strings.Contains(empty, "deskside-relay downloads add") {
		t.Errorf("the empty state says %q", empty)
	}
}
