package webtest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deskside/deskside/agent/command"
	"github.com/deskside/deskside/agent/health"
	"github.com/deskside/deskside/agent/inventory"
	"github.com/deskside/deskside/agent/orgtrust"
	"github.com/deskside/deskside/relay/server/servertest"
)

// TestEndpointPolicyCard: the device page shows what the device refuses
// by its own policy, highlighted with the reason, and disables the
// buttons that would only be refused, with the reason as tooltip; a
// policy changed on the device while connected reaches the page live.
func TestEndpointPolicyCard(t *testing.T) {
	c := startConsole(t)
	log := servertest.DiscardLogger()
	st := c.relay.Enroll(t, "locked-down")
	if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{NoCommands: true, NoUnattended: true, Groups: []string{"lab"}}); err != nil {
		t.Fatal(err)
	}
	guard, err := orgtrust.Open(st.Dir, st.DeviceID, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	servertest.RunAgent(t, st, servertest.AgentOptions{
		Inventory: inventory.New(log), Health: health.NewSampler(log, health.Options{}), Hostname: "locked-down", HealthInterval: 200 * time.Millisecond,
		Commands: command.New(command.Options{Logger: log}), Guard: guard,
	})
	c.signIn(t, "admin", servertest.AdminPassword)
	c.run(t, 20*time.Second,
		chromedp.WaitVisible(row(st.DeviceID, `[data-online=true]`)),
		chromedp.Navigate(c.url+"#/devices/"+st.DeviceID),
		chromedp.WaitVisible(css(`[data-testid=endpoint-card] [data-testid=endpoint-commands][data-refused=true]`)),
	)
	c.screenshot(t, "endpoint-policy.png")
	card := eval[string](t, c, `document.querySelector('[data-testid=endpoint-card]').textContent`)
	for _, want := range []string{"Not pinned: obeys the relay", "turns off remote commands and actions (set on the device: deskside-agent policy)", "turns off remote-desktop sessions", "lab"} {
		if !strings.Contains(card, want) {
			t.Errorf("endpoint card %q lacks %q", card, want)
		}
	}
	if color := eval[string](t, c, `getComputedStyle(document.querySelector('[data-testid=endpoint-desktop]')).color`); color == eval[string](t, c, `getComputedStyle(document.querySelector('[data-testid=endpoint-pin]')).color`) {
		t.Errorf("a refused setting is not highlighted (color %s)", color)
	}
	for _, b := range []string{"remote-control", "remote-view", "cmd-run"} {
		got := eval[map[string]any](t, c, `(() => { const b = document.querySelector('[data-testid=`+b+`]'); return {disabled: b.disabled, title: b.title}; })()`)
		if got["disabled"] != true || !strings.Contains(got["title"].(string), "deskside-agent policy") {
			t.Errorf("%s: %v, want disabled with the reason as tooltip", b, got)
		}
	}

	// Commands turned on again on the device, while connected.
	if err := orgtrust.WritePolicy(st.Dir, orgtrust.Policy{NoUnattended: true}); err != nil {
		t.Fatal(err)
	}
	c.run(t, 20*time.Second,
		chromedp.WaitVisible(css(`[data-testid=endpoint-commands][data-refused=false]`)),
	)
	if got := eval[bool](t, c, `document.querySelector('[data-testid=cmd-run]').disabled`); got {
		t.Error("the Run button stays disabled once the device allows commands again")
	}
	if got := eval[bool](t, c, `document.querySelector('[data-testid=remote-control]').disabled`); !got {
		t.Error("the Control button is enabled while the device refuses desktop sessions")
	}
}
