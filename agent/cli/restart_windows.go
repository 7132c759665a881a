package cli

import "os"

// restartProcess exits; the service's recovery actions start the
// executable again (kardianos OnFailure=restart).
func restartProcess() { os.Exit(75) }
