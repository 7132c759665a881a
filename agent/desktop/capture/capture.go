package capture

import "time"

// Monitor is one monitor of the display, in virtual-screen coordinates.
type Monitor struct {
	// ID identifies the monitor for Select; it is its index in the list
	// Monitors returns and is stable while the monitor layout is.
	ID int
	// Name is the output name (such as "DP-1"), or "screen" when the
	// display has no monitor information.
	Name                string
	X, Y, Width, Height int
	// Primary marks the primary monitor; when the display names none, the
	// first monitor is marked.
	Primary bool
}

// WholeScreen selects the whole virtual screen (all monitors).
const WholeScreen = -1

// Frame is a captured image. A Capturer returns the same *Frame on every
// call: it and Pix are valid until the next Capture, Select or Close.
type Frame struct {
	// Width and Height are the image size in pixels, Stride the bytes per
	// row (Width*4).
	Width, Height, Stride int
	// X and Y are the captured area's top-left corner in virtual-screen
	// coordinates (the selected monitor's origin; 0, 0 for WholeScreen).
	X, Y int
	// Monitor is the selection the image shows: a Monitor.ID, or
	// WholeScreen. It changes with Select, and falls back to WholeScreen
	// when the selected monitor disappears.
	Monitor int
	// Pix holds the pixels as B, G, R, X bytes (X11's native 32-bit
	// little-endian layout). The fourth byte is padding, not alpha.
	Pix []byte
	// Changed reports whether Pix differs from the previous Capture's
	// (always true for the first Capture after Open or Select).
	Changed bool
	// Seq numbers the images: it increases by one with every Capture that
	// returns Changed=true, so frames with equal Seq have equal pixels.
	Seq uint64
	// Time is when this Capture checked the screen: the image was current
	// at Time.
	Time time.Time
}

// Capturer grabs images of one display. Its methods are safe for
// concurrent use, but a Frame is shared: use it from one goroutine.
type Capturer interface {
	// Monitors lists the display's monitors.
	Monitors() ([]Monitor, error)
	// Select chooses the monitor to capture by ID (or WholeScreen, -1,
	// for the whole screen / all monitors; the default after Open).
	Select(id int) error
	// Capture grabs the current image; Changed=false (and no copy) when
	// nothing changed since the last Capture.
	Capture() (*Frame, error)
	// Close releases the display connection and shared memory; it is
	// idempotent.
	Close() error
}

// Grab methods a Capturer may use.
const (
	// GrabSHM is MIT-SHM: the server writes the image into shared memory.
	GrabSHM = "mit-shm"
	// GrabGetImage is the core GetImage request: the image travels over
	// the X connection.
	GrabGetImage = "getimage"
)

// Change-detection methods a Capturer may use.
const (
	// ChangeDamage is the DAMAGE extension: idle Captures cost nothing.
	ChangeDamage = "damage"
	// ChangeCompare grabs the whole image every time and compares it
	// with the previous one.
	ChangeCompare = "compare"
)

// Info describes how a Capturer works, for logs and diagnostics.
type Info struct {
	// Backend is the capture system, "x11".
	Backend string
	// Display is the display connected to, such as ":0".
	Display string
	// Grab is GrabSHM or GrabGetImage.
	Grab string
	// Change is ChangeDamage or ChangeCompare.
	Change string
}

// Notifier is implemented by Capturers that hear of changes as they
// happen (DAMAGE), so a caller can Capture as soon as the screen changes
// instead of polling on a fixed tick.
type Notifier interface {
	// Changes receives a value when the screen may have changed since the
	// last Capture, or the display connection was lost; values coalesce
	// (the channel holds at most one). A nil channel means the Capturer
	// cannot tell: poll Capture on a tick.
	Changes() <-chan struct{}
}

// Informer is implemented by Capturers that can describe themselves.
type Informer interface {
	Info() Info
}
