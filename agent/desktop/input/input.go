package input

// Injector injects pointer and keyboard events into a desktop. Its methods
// are safe for concurrent use.
type Injector interface {
	// MouseMove moves the pointer to (x, y), absolute virtual-screen
	// coordinates: a caller that captures one monitor adds that monitor's
	// X and Y offset to the position within it.
	MouseMove(x, y int) error
	// MouseButton presses (down) or releases a button: 1 left, 2 middle,
	// 3 right, 8 back, 9 forward.
	MouseButton(button int, down bool) error
	// Wheel scrolls by dy clicks down (negative: up) and dx clicks right
	// (negative: left), as X buttons 4/5/6/7. At most MaxWheelClicks per
	// axis and call are sent.
	Wheel(dx, dy int) error
	// Key presses (down) or releases the key with the browser's
	// KeyboardEvent.code, such as "KeyA", "ShiftLeft", "Enter", "Digit1",
	// "ArrowLeft" or "F5".
	Key(code string, down bool) error
	// ReleaseAll releases every key and button this Injector holds down
	// (the viewer lost focus).
	ReleaseAll() error
	// Close releases what is held, unbinds spare keycodes and closes the
	// connection; it is idempotent.
	Close() error
}

// Mouse buttons.
const (
	ButtonLeft    = 1
	ButtonMiddle  = 2
	ButtonRight   = 3
	ButtonBack    = 8
	ButtonForward = 9
)

// MaxWheelClicks caps the clicks per axis of one Wheel call.
const MaxWheelClicks = 100
