package notify

import (
	"fmt"
	"net/mail"
	"strings"
)

// MaxEmailBytes caps an email address.
const MaxEmailBytes = 254

// CleanEmail checks a technician's email address (a bare address; ""
// means none) and returns it trimmed.
func CleanEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", nil
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email || len(email) > MaxEmailBytes {
		return "", fmt.Errorf("%w: email %q: a bare address such as alice@example.com", ErrInvalid, email)
	}
	return email, nil
}
