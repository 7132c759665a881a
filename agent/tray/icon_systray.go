//go:build linux || windows

package tray

import (
	"context"
	"runtime"
	"time"

	"fyne.io/systray"
)

// RunIcon shows the tray icon and its menu until ctx ends or the user
// quits. It returns an error wrapping ErrNoTrayHost at once when the
// desktop shows no tray icons.
func RunIcon(ctx context.Context, t *Tray) error {
	if err := trayHost(); err != nil {
		return err
	}
	icon := func(session bool) []byte {
		p := iconPNG(session)
		if runtime.GOOS == "windows" {
			return iconICO(p)
		}
		return p
	}
	onReady := func() {
		systray.SetTitle("Deskside")
		items := make(map[ItemID]*systray.MenuItem)
		for _, it := range Menu(t.State()) {
			m := systray.AddMenuItem(it.Label, "")
			items[it.ID] = m
			go func(id ItemID, m *systray.MenuItem) {
				for range m.ClickedCh {
					if err := t.Click(ctx, id); err != nil {
						t.Logger.Warn("tray menu", "item", id, "err", err)
					}
				}
			}(it.ID, m)
			if it.ID == ItemEndSession {
				systray.AddSeparator()
			}
		}
		var last *MenuState
		draw := func() {
			s := t.State()
			if last != nil && *last == s {
				return // nothing to redraw: no D-Bus traffic while idle
			}
			last = &s
			systray.SetIcon(icon(s.Session.Active))
			systray.SetTooltip(Tooltip(s))
			for _, it := range Menu(s) {
				m := items[it.ID]
				m.SetTitle(it.Label)
				if it.Enabled {
					m.Enable()
				} else {
					m.Disable()
				}
				if it.Visible {
					m.Show()
				} else {
					m.Hide()
				}
			}
		}
		draw()
		go func() {
			// The connection state has no push: look every 2 s too.
			tick := time.NewTicker(2 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					systray.Quit()
					return
				case <-t.Changes():
				case <-tick.C:
				}
				draw()
			}
		}()
	}
	systray.Run(onReady, func() {})
	return nil
}
