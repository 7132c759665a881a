package backup

import "errors"

var (
	// ErrEncrypted is returned by Restore for an encrypted archive when no
	// passphrase was given.
	ErrEncrypted = errors.New("backup: the archive is encrypted: give its passphrase (--passphrase-file or DESKSIDE_BACKUP_PASSPHRASE)")
	// ErrPassphrase is returned by Restore when the passphrase does not
	// decrypt the archive.
	ErrPassphrase = errors.New("backup: wrong passphrase: this archive was encrypted with another one")
	// ErrDamaged is returned by Restore when the archive is not a whole,
	// unchanged Deskside backup: unreadable, truncated, or a file that
	// does not match the manifest's size and SHA-256.
	ErrDamaged = errors.New("backup: the archive is damaged or was changed")
	// ErrNotEmpty is returned by Restore when the data directory already
	// holds files and Force is not set.
	ErrNotEmpty = errors.New("backup: the data directory is not empty")
	// ErrTooNew is returned by Restore for an archive written by a newer
	// relay: a newer archive format or database schema than this binary
	// knows.
	ErrTooNew = errors.New("backup: the archive is newer than this relay")
)
