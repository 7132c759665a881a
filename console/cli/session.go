package cli

import (
	"errors"
	"fmt"
	"net/url"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// sessionStart prints the web console URL that opens the remote-desktop
// viewer for a device. The viewer itself (in the browser) starts the
// session, so the technician's browser session, role and the device's
// policy apply there.
func (e *runEnv) sessionStart(args []string) error {
	fs := e.flags("session start", "Prints a URL that opens the remote-desktop viewer for the device in the web console.")
	view := fs.Bool("view", false, "view only (no mouse, keyboard or clipboard)")
	ticket := fs.String("ticket", "", "the ticket `CODE` the session is for: the device's user sees it in the consent prompt")
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
	d, err := c.client.GetDevice(ctx, &desksidev1.GetDeviceRequest{Id: id})
	if err != nil {
		return c.explain(err)
	}
	who, err := c.client.WhoAmI(ctx, &desksidev1.WhoAmIRequest{})
	if err != nil {
		return c.explain(err)
	}
	base := who.GetConsoleUrl()
	if base == "" {
		return errors.New("the relay serves no web console (it was started with --web-listen off), where the remote-desktop viewer runs: " +
			"restart the relay with --web-listen HOST:PORT")
	}
	control := "1"
	if *view {
		control = "0"
	}
	u := base + "#/devices/" + url.PathEscape(id) + "/session?control=" + control
	if *ticket != "" {
		u += "&ticket=" + url.QueryEscape(*ticket)
	}
	if !d.GetDevice().GetOnline() {
		fmt.Fprintf(e.stderr, "note: %s is offline; the viewer will say so until it reconnects\n", clean(id))
	}
	if m := d.GetDevice().GetDesktopMode(); m == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_ATTENDED ||
		(m == desksidev1.DesktopPolicyMode_DESKTOP_POLICY_MODE_UNSPECIFIED && !d.GetDevice().GetUnattendedAllowed()) {
		fmt.Fprintf(e.stderr, "note: %s asks its user's consent first: the session starts when they allow it (no answer in 30 s denies)\n", clean(id))
	}
	_, err = fmt.Fprintln(e.stdout, u)
	return err
}
