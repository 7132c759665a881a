package localipc

// PipeName is the named pipe the Windows service is to listen on, with an
// ACL for SYSTEM and the interactive user (to come: Listen and Dial return
// ErrUnsupported until then).
const PipeName = `\\.\pipe\deskside-agent`
