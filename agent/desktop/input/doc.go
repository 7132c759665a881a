// Package input injects the technician's mouse and keyboard into the
// agent's desktop for the remote-desktop feature.
//
// An [Injector] takes what the viewer's browser reports: absolute pointer
// positions, button numbers, wheel clicks, and keys named by
// KeyboardEvent.code ("KeyA", "ShiftLeft", "Enter"). Codes name physical
// key positions, so the keyboard is injected key by key: code → X keysym
// through a US-layout table (letters, digits, punctuation, modifiers,
// F1–F24, navigation, numpad, media), then keysym → keycode through the
// server's keyboard mapping. Modifiers are keys like the others — the
// viewer sends ShiftLeft down, KeyA down and up, ShiftLeft up — so the
// desktop's own layout and lock state decide the character typed, as they
// would for a local keyboard. A keysym that no key carries (F13–F24 on
// most keymaps) is bound to a spare keycode for the Injector's lifetime
// and unbound by Close.
//
// The Injector remembers the keys and buttons it holds down; ReleaseAll
// lets them go (call it when the viewer loses focus, or keys stay stuck),
// and Close does so too.
//
// # Linux (X11)
//
// Events are injected with the XTEST extension (FakeInput) over a
// github.com/jezek/xgb connection; each call returns once the server has
// taken the event, so errors are reported by the call that caused them.
// The keyboard mapping is read once and again after every MappingNotify.
// Wayland sessions are refused with [ErrWaylandNotSupported], and other
// platforms get [ErrNotSupported] from [Open] until their backends exist.
package input
