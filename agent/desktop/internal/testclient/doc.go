// Package testclient is a small X11 client for the tests of the desktop
// packages: it shows a known picture and records the input it receives.
//
// [Start] opens an override-redirect window covering the whole screen,
// paints it in four quadrants (red, green, blue, white from the top left,
// clockwise: top-left red, top-right green, bottom-left blue, bottom-right
// white; see [Options]), takes the keyboard focus, and records key, button
// and motion events with their coordinates and the text the keys produce
// under the server's keyboard mapping (refreshed on MappingNotify). Tests
// change the picture with [Client.SetColor] and wait for input with
// [Client.WaitFor], which is woken by each new event rather than sleeping.
package testclient
