// Package junit writes JUnit XML reports. The element types stay with
// their writers (the conform report is one <testsuite>, the scenario
// report <testsuites> with properties and errors); what they share is how
// a document is put on the wire, kept here so every JUnit file the
// harness writes has the same header, indentation and final newline.
package junit

import (
	"encoding/xml"
	"io"
)

// Write writes v as a whole XML document: the XML header, v encoded with
// two-space indentation, and a final newline.
func Write(w io.Writer, v any) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
