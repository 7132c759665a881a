package banner

import "errors"

// ErrNotSupported is wrapped by Open on platforms without a banner yet.
var ErrNotSupported = errors.New("banner: the on-screen session banner is not supported")
