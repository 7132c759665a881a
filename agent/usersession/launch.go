package usersession

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
)

// What a launched helper gets: its arguments, and on Windows its
// environment, built from the user's profile (CreateEnvironmentBlock in
// runner_windows.go). Platform-free so that Linux tests check it.

// helperArgs are the helper's command-line arguments.
func helperArgs(socket string, consentTimeout time.Duration) []string {
	args := []string{"desktop-helper", "--socket", socket}
	if consentTimeout > 0 {
		args = append(args, "--consent-timeout", consentTimeout.String())
	}
	return args
}

// sessionEnv is the helper's whole environment on Windows: the user's own,
// as CreateEnvironmentBlock built it from their profile without the
// service's, with later duplicates of a name dropped (Windows names do not
// depend on case) and sorted by name without case, as Windows keeps an
// environment block.
func sessionEnv(user []string) []string {
	seen := map[string]bool{}
	var env []string
	for _, kv := range user {
		name := envName(kv)
		if name == "" || seen[strings.ToUpper(name)] {
			continue
		}
		seen[strings.ToUpper(name)] = true
		env = append(env, kv)
	}
	slices.SortStableFunc(env, func(a, b string) int {
		return strings.Compare(strings.ToUpper(envName(a)), strings.ToUpper(envName(b)))
	})
	return env
}

// envName is the name of "NAME=value" ("" when there is no "="); a
// leading "=" belongs to the name (Windows' "=C:" entries).
func envName(kv string) string {
	i := strings.IndexByte(kv[min(1, len(kv)):], '=')
	if i < 0 {
		return ""
	}
	return kv[:i+min(1, len(kv))]
}

// envValue is name's value in env ("" when it is not set).
func envValue(env []string, name string) string {
	for _, kv := range env {
		if strings.EqualFold(envName(kv), name) {
			return kv[len(name)+1:]
		}
	}
	return ""
}

// envBlock encodes env as a Unicode environment block for
// CreateProcessAsUser (CREATE_UNICODE_ENVIRONMENT): each "NAME=value"
// ends with a NUL, and the block with one more.
func envBlock(env []string) ([]uint16, error) {
	var b []uint16
	for _, kv := range env {
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, fmt.Errorf("the environment variable %.40q holds a NUL", kv)
		}
		if envName(kv) == "" {
			return nil, fmt.Errorf("the environment entry %.40q has no NAME=", kv)
		}
		b = append(b, utf16.Encode([]rune(kv))...)
		b = append(b, 0)
	}
	if len(b) == 0 {
		b = append(b, 0)
	}
	return append(b, 0), nil
}
