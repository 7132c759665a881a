package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	desksidev1 "github.com/deskside/deskside/proto/gen/deskside/v1"
)

// Live chat with a ticket's requester and the files kept with a ticket
// (a Get help screenshot and triage report).

const ticketChatHelp = `
Sends a live chat line to the requester of a ticket filed from a device's
Get help: it reaches their Get help page on the device at once and is kept
on the ticket's timeline (` + "`deskside ticket show CODE`" + ` prints the chat).
Like a public reply, the first line meets the first-response target and
opens a new ticket. The text is the arguments after CODE, or standard input
with "-"; at most 4 KiB (send a reply for longer text).

Example:
  deskside ticket chat DS-7K3Q "I'm looking at it now; please keep the window open."`

const ticketAttachmentHelp = `
Saves a file kept with a ticket (the screenshot and the triage report a
user's Get help sends; ` + "`deskside ticket show CODE`" + ` lists them) to FILE,
or to standard output with "-o -". Without -o the file is saved under
its own name in the current directory. An existing file is not
overwritten unless --force.

Examples:
  deskside ticket attachment DS-7K3Q screenshot.png -o shot.png
  deskside ticket attachment DS-7K3Q triage.pb -o - > triage.pb`

func (e *runEnv) ticketChat(args []string) error {
	fs := e.flags("ticket chat", ticketChatHelp)
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	text := strings.Join(rest, " ")
	if text == "-" {
		if text, err = e.readText("-"); err != nil {
			return err
		}
		text = strings.TrimRight(text, "\r\n")
	}
	if strings.TrimSpace(text) == "" {
		return errUsage(fs, "the chat TEXT is required (\"-\" reads it from standard input)")
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.SendChatResponse, error) {
		return tc.SendChat(ctx, &desksidev1.SendChatRequest{Code: code, Text: text})
	})
	if err != nil {
		return err
	}
	return e.printTicketChange("Chatted on", resp.GetTicket())
}

func (e *runEnv) ticketAttachment(args []string) error {
	fs := e.flags("ticket attachment", ticketAttachmentHelp)
	out := fs.String("o", "", "write to `FILE` (\"-\": standard output; default: the attachment's name)")
	force := fs.Bool("force", false, "overwrite FILE if it exists")
	code, rest, err := ticketCode(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return errUsage(fs, "the attachment NAME is required (`deskside ticket show %s` lists them)", clean(code))
	}
	name := rest[0]
	if err := noMore(fs, rest[1:]); err != nil {
		return err
	}
	resp, err := ticketUnary(e, func(ctx context.Context, tc desksidev1.TicketServiceClient) (*desksidev1.ListTicketAttachmentsResponse, error) {
		return tc.ListTicketAttachments(ctx, &desksidev1.ListTicketAttachmentsRequest{Code: code, WithData: true})
	})
	if err != nil {
		return err
	}
	var found *desksidev1.TicketAttachment
	var names []string
	for _, a := range resp.GetAttachments() {
		names = append(names, clean(a.GetName()))
		if a.GetName() == name && found == nil {
			found = a
		}
	}
	if found == nil {
		if len(names) == 0 {
			return fmt.Errorf("%s has no attachments (only tickets filed from a device's Get help have some)", clean(strings.ToUpper(code)))
		}
		return fmt.Errorf("%s has no attachment %q; it has: %s (see `deskside ticket show %s`)",
			clean(strings.ToUpper(code)), clean(name), strings.Join(names, ", "), clean(code))
	}
	if *out == "-" {
		_, err := e.stdout.Write(found.GetData())
		return err
	}
	path := *out
	if path == "" {
		// The relay names its files; a name is still never a path here.
		path = filepath.Base(filepath.Clean("/" + found.GetName()))
		if path == "/" || path == "." {
			path = "attachment"
		}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: choose another -o FILE, or --force to overwrite it", path)
	} else if err != nil {
		return err
	}
	if _, err := f.Write(found.GetData()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Saved %s (%s, %d bytes) to %s.\n", clean(found.GetName()), clean(found.GetContentType()), len(found.GetData()), path)
	return nil
}

// printAttachments lists a ticket's files (name, size, type) after its
// timeline; nothing when it has none.
func (e *runEnv) printAttachments(ctx context.Context, c *conn, tc desksidev1.TicketServiceClient, code string) {
	resp, err := tc.ListTicketAttachments(ctx, &desksidev1.ListTicketAttachmentsRequest{Code: code})
	if err != nil {
		fmt.Fprintf(e.stdout, "\nAttachments: unavailable (%v)\n", c.explain(err))
		return
	}
	as := resp.GetAttachments()
	if len(as) == 0 {
		return
	}
	fmt.Fprintf(e.stdout, "\nAttachments (save one with `deskside ticket attachment %s NAME -o FILE`):\n", clean(code))
	for _, a := range as {
		fmt.Fprintf(e.stdout, "  %-16s %10s  %s\n", clean(a.GetName()), formatBytes(uint64(a.GetSize())), clean(a.GetContentType()))
	}
}

// chatText is a chat entry on one line: who (requester or technician) and
// the text.
func chatText(en *desksidev1.TicketEntry, body func(string) string) string {
	if login, ok := strings.CutPrefix(en.GetAuthor(), "requester <"); ok {
		return body("chat from requester " + clean(strings.TrimSuffix(login, ">")) + ": ")
	}
	return body("chat: ")
}
