// Package msi builds the Windows installer of the Deskside agent: it
// cross-compiles deskside-agent.exe and deskside-tray.exe, renders a WiX
// source from agent.wxs.tmpl with the version from git, compiles it with
// msitools' wixl, finishes what wixl cannot express with msibuild (the
// hidden enroll command line, the service's restart on failure, an early
// removal of the previous version), and Authenticode-signs the two
// executables and the MSI with osslsigncode.
//
// The MSI installs per machine into Program Files\Deskside, registers the
// agent service exactly as `deskside-agent install` does (agent/service's
// Agent* constants), starts the tray at every user's login, and, when the
// RELAY and TOKEN properties are both given, enrolls the agent as
// LocalSystem before the service starts:
//
//	msiexec /i deskside-agent.msi RELAY=relay.example.org:7443 TOKEN=… /qn
package msi
