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
	if !d.GetDevice().GetOnline() {
		fmt.Fprintf(e.stderr, "note: %s is offline; the viewer will say so until it reconnects\n", clean(id))
	}
	if !d.GetDevice().GetUnattendedAllowed() {
		fmt.Fprintf(e.stderr, "note: %s requires its user's consent, which is not available yet; an admin can allow unattended access "+
			"(deskside devices policy %s --unattended)\n", clean(id), shellQuote(id))
	}
	_, err = fmt.Fprintln(e.stdout, u)
	return err
}
