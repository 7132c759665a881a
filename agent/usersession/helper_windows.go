package usersession

import "errors"

// ErrNoCapture: the Windows helper starts, connects and is identified,
// but cannot capture the screen yet.
var ErrNoCapture = errors.New("remote desktop capture on Windows is not built yet (DXGI)")

// helperDisplay names the desktop the helper runs on, for its hello.
func helperDisplay() string { return `winsta0\default` }

// helperCapture reports whether the helper can capture here: not yet.
func helperCapture() error { return ErrNoCapture }
