package postgres

// Migrations exposes the embedded migrations to the external tests.
var Migrations = func() (n int, err error) {
	ms, err := migrations()
	return len(ms), err
}
