package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/deskside/deskside/relay/config"
	"github.com/deskside/deskside/relay/downloads"
)

const downloadsUsage = "usage: deskside-relay downloads add FILE... | list  [--dir DIR] [--config FILE]"

// downloadsCommand runs `deskside-relay downloads add|list`: the agent
// packages the relay serves at /download/ for new installs
// (docs/adr/0034-agent-downloads.md). A running relay serves what is
// added at once.
func downloadsCommand(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "add" && args[0] != "list") {
		fmt.Fprintln(stderr, downloadsUsage)
		return 2
	}
	fs := flag.NewFlagSet("deskside-relay downloads "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "downloads directory (default: downloads of the relay's configuration, else DATA/downloads)")
	cfgFile := fs.String("config", "", "the relay's configuration file (default: as the relay finds it, "+config.DefaultFile+")")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(stderr, "deskside-relay downloads:", err); return 1 }
	if *dir == "" {
		d, err := downloadsDir(*cfgFile, lookupEnv)
		if err != nil {
			return fail(err)
		}
		*dir = d
	}
	switch args[0] {
	case "add":
		if fs.NArg() == 0 {
			fmt.Fprintln(stderr, "usage: deskside-relay downloads add FILE... (e.g. dist/deskside-agent* bin/deskside-agent.msi, from make packages and make msi)")
			return 2
		}
		res, err := downloads.Add(*dir, fs.Args())
		for _, s := range res.Skipped {
			fmt.Fprintf(stderr, "skipped %s: not an agent package (served: %s)\n", s, downloads.Patterns)
		}
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "Added to %s (served at once at https://RELAY:8443/download/):\n", *dir)
		for _, f := range res.Added {
			fmt.Fprintln(stdout, " ", f)
		}
		fmt.Fprintf(stdout, "%s rewritten. Compare these SHA-256 sums with the SHA256SUMS of the machine that built the packages.\n", downloads.SumsFile)
	case "list":
		list, err := (&downloads.Dir{Path: *dir}).List()
		if err != nil {
			return fail(err)
		}
		if len(list) == 0 {
			fmt.Fprintf(stdout, "No agent packages in %s: build them with make packages (and make msi), then: deskside-relay downloads add dist/deskside-agent* bin/deskside-agent.msi\n", *dir)
		}
		for _, f := range list {
			fmt.Fprintln(stdout, f)
		}
	}
	return 0
}

// downloadsDir is the downloads directory of the relay's configuration.
func downloadsDir(file string, lookupEnv func(string) (string, bool)) (string, error) {
	var args []string
	if file != "" {
		args = []string{"--config", file}
	}
	c, err := config.Load(config.Options{Name: "deskside-relay downloads", Args: args, LookupEnv: lookupEnv, DefaultFile: config.DefaultFile})
	if err != nil {
		return "", fmt.Errorf("%w (or name the directory with --dir)", err)
	}
	if d := c.Get("downloads").Value.(string); d != "" {
		return d, nil
	}
	data := c.Get("data").Value.(string)
	if data == "" {
		return "", errors.New("no data directory configured: name the downloads directory with --dir")
	}
	return filepath.Join(data, "downloads"), nil
}
