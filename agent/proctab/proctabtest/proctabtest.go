// Package proctabtest holds helpers for tests that start processes and
// wait for the process table to change: a process to become a zombie, a
// tree to end, output to arrive.
package proctabtest

import "github.com/deskside/deskside/internal/testpoll"

// CheckFor polls f every interval until it returns nil, failing the test
// with f's last error after timeout.
var CheckFor = testpoll.CheckFor
