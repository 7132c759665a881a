// Package xvfb starts throw-away Xvfb servers for the tests of the desktop
// packages (capture, input, and the encoders and sessions built on them).
//
// [Start] runs `Xvfb :N -screen 0 1920x1080x24 -nolisten tcp -displayfd 3`
// on the first free display from :90 upward, learns through -displayfd
// when the server accepts connections, and stops it when the test ends.
// When Xvfb is not installed the test is skipped with a message saying so,
// unless CI=true, where that is a failure (testkit.Need). Under -short the
// test is skipped (testkit.Heavy).
//
// The servers require a MIT-MAGIC-COOKIE-1, like a real desktop: Start
// writes a fresh cookie per server into one Xauthority file per process
// and points $XAUTHORITY at it (os.Setenv, so subprocesses started with
// os.Environ() can connect too) while any server runs; the file goes and
// $XAUTHORITY is restored when the last one stops. Clients thus exercise
// the $XAUTHORITY path, and xgb does not log that it found no cookie.
package xvfb
