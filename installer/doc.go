// Package installer will hold what installs Deskside on a machine: the
// packages (deb, rpm, pkg) and the service units for the relay and the
// agent. The Windows MSI is installer/msi (make msi). Development tools live under internal/ (internal/devrun for
// `make run`, internal/benchtable for `make bench`); the agent's service
// wrapper is agent/service.
package installer
