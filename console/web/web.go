// Package web holds the technician web console: a single-page app (vanilla
// TypeScript, built by `make web` into dist/) that calls ConsoleService
// with the Connect protocol on the relay that serves it. The built files
// are committed and embedded here, so `go build` alone yields a relay with
// a working console; Files is what the relay serves.
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Files returns the console's files: index.html, app.js and app.css at the
// root. The relay serves them with its own security headers
// (Content-Security-Policy without inline script or style).
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// Only possible if the embed directive above changes.
		panic("console/web: " + err.Error())
	}
	return sub
}
