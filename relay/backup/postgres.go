package backup

import (
	"net/url"
	"strings"
)

// PostgresCommands returns the pg_dump and pg_restore command lines that
// back up and restore the relay database a PostgreSQL URL names (a
// backup archive of a relay on PostgreSQL holds no database). The URL is
// rewritten for libpq: without its password (pg_dump reads PGPASSWORD or
// ~/.pgpass) and without the parameters only the relay's driver knows: a
// search_path becomes --schema, pool settings are dropped.
func PostgresCommands(database, dumpFile string) (dump, restore []string) {
	dsn, schema := libpqURL(database)
	dump = []string{"pg_dump", "--format=custom", "--file=" + dumpFile}
	if schema != "" {
		dump = append(dump, "--schema="+schema)
	}
	dump = append(dump, "--dbname="+dsn)
	restore = []string{"pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname=" + dsn, dumpFile}
	return dump, restore
}

// libpqURL returns database without a password and pgx-only parameters,
// and the schema its search_path names (the first one).
func libpqURL(database string) (dsn, schema string) {
	u, err := url.Parse(database)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return database, ""
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	q.Del("password")
	if sp := q.Get("search_path"); sp != "" {
		schema = strings.TrimSpace(strings.Split(sp, ",")[0])
	}
	for k := range q {
		if k == "search_path" || strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), schema
}

// ShellQuote quotes args for a POSIX shell, for printing a command line.
func ShellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:@,+") == "" {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
