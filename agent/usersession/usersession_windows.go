package usersession

// The Windows twin, to come: the service (LocalSystem) finds the console
// session (WTSGetActiveConsoleSessionId), takes its user's token
// (WTSQueryUserToken) and starts `deskside-agent desktop-helper` in that
// session (CreateProcessAsUser on the session's winsta0\default desktop),
// which connects back over localipc's named pipe (PipeName). Until then
// NewRunner returns ErrUnsupported (usersession_other.go).
