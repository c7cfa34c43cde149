package fs

import "fmt"

// FormatError reports bytes that do not follow a file's layout, or a value
// that cannot be written in it. File names the minidriver file ("cardcf",
// "cmapfile", "masterfile", "keymap", "certificate", "cardapps", "cardid");
// Offset is the byte offset of the offending field within that file's
// content (the DO value, without its TLV header). Msg names the record
// and field where the file has records, because a harness report that
// says "record 3 wszGuid" is actionable and "bad cmapfile" is not.
type FormatError struct {
	File   string
	Offset int
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("fs: %s: offset %d: %s", e.File, e.Offset, e.Msg)
}

func formatErr(file string, off int, format string, args ...any) *FormatError {
	return &FormatError{File: file, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// ConsistencyError reports a disagreement between two files that are each
// well formed on their own (see CheckConsistent). Container is the
// container index concerned, or -1 when the disagreement is about the
// files as a whole (their record counts).
type ConsistencyError struct {
	Container int
	Msg       string
}

func (e *ConsistencyError) Error() string {
	if e.Container < 0 {
		return "fs: cmapfile/keymap: " + e.Msg
	}
	return fmt.Sprintf("fs: cmapfile/keymap: container %d: %s", e.Container, e.Msg)
}

// wholeRecords checks that body, which starts at offset start of file, is
// a whole number of size-byte records, and returns how many. The error's
// offset is the first trailing byte.
func wholeRecords(file string, body []byte, start, size int) (int, error) {
	if rem := len(body) % size; rem != 0 {
		what := "bytes"
		if start > 0 {
			what = "record bytes" // after a header
		}
		return 0, formatErr(file, start+len(body)-rem,
			"%d %s is not a multiple of the %d-byte record (%d trailing bytes)", len(body), what, size, rem)
	}
	return len(body) / size, nil
}

// versionedRecords checks a file that is a version byte (it must be
// version) followed by whole size-byte records; it returns the records'
// bytes and how many there are. b must not be empty.
func versionedRecords(file string, b []byte, version byte, size int) ([]byte, int, error) {
	if b[0] != version {
		return nil, 0, formatErr(file, 0, "version %02X, want %02X", b[0], version)
	}
	n, err := wholeRecords(file, b[1:], 1, size)
	return b[1:], n, err
}
