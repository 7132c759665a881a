package kb

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/deskside/deskside/relay/store"
)

// Limits of an article's fields.
const (
	MaxTitle    = 200       // runes
	MaxBody     = 256 << 10 // bytes of Markdown
	MaxCategory = 64        // runes
	MaxTag      = 32        // runes
	MaxTags     = 16
	MaxSlug     = 60 // bytes (ASCII)
	MaxTerms    = 12 // search words used
	MaxTerm     = 64 // runes; longer words are dropped
)

// CleanBody makes Markdown storable: valid UTF-8, "\n" line ends, and no
// control characters but tab and newline (the store's snippet markers
// are control characters, and PostgreSQL text cannot hold NUL).
func CleanBody(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// cleanLine is one line of text: valid UTF-8, whitespace runs (newlines
// included) folded to one space, no control characters, trimmed.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// Content is what a technician writes: the article's editable fields.
type Content struct {
	Title    string
	Body     string
	Category string
	Tags     []string
}

// Clean returns c cleaned (see CleanBody, cleanLine, CleanTag) or an
// ErrInvalid error naming the first field that is empty or too long.
func (c Content) Clean() (Content, error) {
	out := Content{Title: cleanLine(c.Title), Body: CleanBody(c.Body), Category: cleanLine(c.Category)}
	switch n := utf8.RuneCountInString(out.Title); {
	case n == 0:
		return Content{}, fmt.Errorf("%w: the title is empty", ErrInvalid)
	case n > MaxTitle:
		return Content{}, fmt.Errorf("%w: the title has %d characters, at most %d are allowed", ErrInvalid, n, MaxTitle)
	}
	if strings.TrimSpace(out.Body) == "" {
		return Content{}, fmt.Errorf("%w: the body is empty", ErrInvalid)
	}
	if len(out.Body) > MaxBody {
		return Content{}, fmt.Errorf("%w: the body is %d bytes, at most %d are allowed", ErrInvalid, len(out.Body), MaxBody)
	}
	if n := utf8.RuneCountInString(out.Category); n > MaxCategory {
		return Content{}, fmt.Errorf("%w: the category has %d characters, at most %d are allowed", ErrInvalid, n, MaxCategory)
	}
	for _, t := range c.Tags {
		ct, err := CleanTag(t)
		if err != nil {
			return Content{}, err
		}
		if ct != "" && !slices.Contains(out.Tags, ct) {
			out.Tags = append(out.Tags, ct)
		}
	}
	if len(out.Tags) > MaxTags {
		return Content{}, fmt.Errorf("%w: %d tags, at most %d are allowed", ErrInvalid, len(out.Tags), MaxTags)
	}
	out.Tags = store.NormTags(out.Tags)
	return out, nil
}

// CleanTag lower-cases a tag and turns spaces into hyphens; a tag may hold
// letters, digits, '-', '_' and '.', at most MaxTag of them. "" stays "".
func CleanTag(t string) (string, error) {
	t = strings.ReplaceAll(cleanLine(strings.ToLower(t)), " ", "-")
	for _, r := range t {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_' && r != '.' {
			return "", fmt.Errorf("%w: tag %q: only letters, digits, '-', '_' and '.' are allowed", ErrInvalid, t)
		}
	}
	if n := utf8.RuneCountInString(t); n > MaxTag {
		return "", fmt.Errorf("%w: tag %q has %d characters, at most %d are allowed", ErrInvalid, t, n, MaxTag)
	}
	return t, nil
}

// Slug is the URL-safe name of a title: lower-case ASCII letters and
// digits, words joined by '-', at most MaxSlug bytes (cut at a word);
// "article" when nothing is left. Accented Latin letters lose their
// accents ("Café" → "cafe"); other scripts are dropped.
func Slug(title string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(title) {
		r = fold(r)
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	s := b.String()
	for len(s) > MaxSlug {
		i := strings.LastIndexByte(s[:MaxSlug], '-')
		if i <= 0 {
			s = s[:MaxSlug]
			break
		}
		s = s[:i]
	}
	if s == "" {
		return "article"
	}
	return s
}

// fold maps the common accented Latin letters to their base letter.
func fold(r rune) rune {
	const from, to = "àáâãäåçèéêëìíîïñòóôõöøùúûüýÿ", "aaaaaaceeeeiiiinoooooouuuuyy"
	if i := strings.IndexRune(from, r); i >= 0 {
		return []rune(to)[utf8.RuneCountInString(from[:i])]
	}
	switch r {
	case 'ß':
		return 's'
	case 'æ':
		return 'a'
	case 'œ':
		return 'o'
	}
	return r
}

// ValidSlug reports whether s could be an article's slug.
func ValidSlug(s string) bool {
	if s == "" || len(s) > MaxSlug+4 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// TicketCode is a ticket code as links store it: trimmed and upper case
// (codes are case-insensitive, "ds-7k3q" is "DS-7K3Q"); 3 to 32 letters,
// digits and '-'. Anything else is ErrInvalid.
func TicketCode(code string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	ok := len(c) >= 3 && len(c) <= 32
	for _, r := range c {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			ok = false
		}
	}
	if !ok {
		return "", fmt.Errorf("%w: %q is not a ticket code (like DS-7K3Q)", ErrInvalid, code)
	}
	return c, nil
}

// stopWords are English words too common to search for. Both backends
// must agree on what matches: PostgreSQL's english configuration drops
// these, SQLite's porter tokenizer keeps them, so they are dropped here
// before either sees them.
var stopWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an and are as at be but by can do does for from has have how i if in into is it its
		me my no not of on or our so that the their them then there these they this to was we what when where which who why
		will with you your`) {
		stopWords[w] = true
	}
}

// SearchTerms splits a query into the words a search uses: runs of
// letters and digits, lower-cased, without duplicates and without common
// English words (unless nothing else is left), at most MaxTerms of them.
// Punctuation, quotes and operators never reach a backend.
func SearchTerms(q string) []string {
	words := strings.FieldsFunc(strings.ToLower(strings.ToValidUTF8(q, " ")), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	var all, kept []string
	for _, w := range words {
		if utf8.RuneCountInString(w) > MaxTerm || slices.Contains(all, w) {
			continue
		}
		all = append(all, w)
		if !stopWords[w] {
			kept = append(kept, w)
		}
	}
	if len(kept) == 0 {
		kept = all
	}
	if len(kept) > MaxTerms {
		kept = kept[:MaxTerms]
	}
	return kept
}

// Part is a piece of a search snippet.
type Part struct {
	Text  string
	Match bool
}

// SnippetParts splits a store snippet at its markers (store.SnippetStart,
// store.SnippetEnd) into plain pieces, matched words marked. Newlines
// become spaces; a stray marker is dropped.
func SnippetParts(s string) []Part {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
	var out []Part
	add := func(text string, match bool) {
		if text != "" {
			out = append(out, Part{Text: text, Match: match})
		}
	}
	for s != "" {
		before, rest, found := strings.Cut(s, store.SnippetStart)
		add(strings.ReplaceAll(before, store.SnippetEnd, ""), false)
		if !found {
			break
		}
		m, after, _ := strings.Cut(rest, store.SnippetEnd)
		add(strings.ReplaceAll(m, store.SnippetStart, ""), true)
		s = after
	}
	return out
}
