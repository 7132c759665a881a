// Package installer holds what installs Deskside on a machine:
// installer/linuxpkg builds the .deb and .rpm of the agent and the relay
// with their service units (make packages), installer/msi the Windows MSI
// of the agent (make msi), and installer/gitinfo reads the version both
// are stamped with from git. Development tools live under internal/
// (internal/devrun for `make run`, internal/benchtable for `make bench`);
// the agent's service wrapper is agent/service.
package installer
