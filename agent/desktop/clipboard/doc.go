// Package clipboard shares the agent desktop's clipboard text with the
// remote-desktop session: it reports when another program puts text on
// the clipboard, and puts the technician's text there.
//
// # Linux (X11)
//
// [Open] makes a github.com/jezek/xgb connection with a hidden
// (InputOnly, unmapped) window and asks XFIXES (SelectSelectionInput) to
// be told whenever the CLIPBOARD selection changes owner. Each new owner
// is asked to convert the selection to UTF8_STRING (STRING, which is
// Latin-1, when it cannot) into a property of the hidden window; the
// text is read with GetProperty, also in INCR chunks when the owner sends
// it incrementally (ICCCM 2.7.2), and handed to [Config.OnChange]. Texts
// longer than [MaxText] bytes are cut at a character boundary there.
// Changes the Clipboard makes itself are not reported.
//
// [Clipboard.SetText] makes the hidden window the CLIPBOARD owner
// (SetSelectionOwner). Until another program takes the selection, every
// SelectionRequest from other X clients is answered by writing the text
// into the requestor's property (ChangeProperty) and sending it a
// SelectionNotify: targets TARGETS, UTF8_STRING, TEXT (as UTF8_STRING),
// STRING (Latin-1; other characters become '?') and TIMESTAMP. Texts
// larger than one chunk (64 KiB, or less when the server's maximum
// request size is smaller) go through INCR. MULTIPLE and other targets
// are refused.
//
// All of it runs on one goroutine that reads the connection's events;
// Close ends it and closes the connection, which destroys the window and
// gives up ownership. Text the Clipboard owned is then gone from the
// clipboard: it is not handed to a clipboard manager (SAVE_TARGETS).
//
// Wayland sessions are refused with [ErrWaylandNotSupported]; other
// platforms get [ErrNotSupported].
package clipboard
