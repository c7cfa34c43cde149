package conform

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/cardharness/cardharness/internal/junit"
)

// WriteText writes the report for people: a line per check, the APDUs of
// each failure, and a summary.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "cardharness conform: reader %q, ATR %s\n", r.Reader, r.ATR)
	if r.Destructive {
		fmt.Fprintln(w, "destructive run: checks wrote to the card (keys, files, PIN counter)")
	} else {
		fmt.Fprintln(w, "read-only run: checks that write are not applicable (--destructive runs them)")
	}
	for _, x := range r.Results {
		writeResultLine(w, x)
	}
	c := r.Counts()
	fmt.Fprintf(w, "%d passed, %d failed, %d not applicable; %d APDUs\n", c[Pass], c[Fail], c[NotApplicable], r.APDUs)
}

func label(s Status) string {
	switch s {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	}
	return "N/A "
}

func writeResultLine(w io.Writer, x Result) {
	fmt.Fprintf(w, "%s  %-36s %s (%s)\n", label(x.Status), x.ID, x.Title, x.Section)
	if x.Message != "" {
		fmt.Fprintf(w, "      %s\n", x.Message)
	}
	for _, line := range x.Trace {
		for _, l := range strings.Split(line, "\n") {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
}

// WriteProgress is a Progress function body for people: one line per
// check as it finishes.
func WriteProgress(w io.Writer) func(Result) {
	return func(x Result) { fmt.Fprintf(w, "%s  %s (%.2fs)\n", label(x.Status), x.ID, x.Seconds) }
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string     `xml:"name,attr"`
	Classname string     `xml:"classname,attr"`
	Time      string     `xml:"time,attr"`
	Failure   *junitText `xml:"failure,omitempty"`
	Skipped   *junitText `xml:"skipped,omitempty"`
}

type junitText struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// WriteJUnit writes the report as a JUnit suite: a failure carries its
// APDUs, a not-applicable check is <skipped> with the reason.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{Name: "cardharness conform " + r.Reader}
	for _, x := range r.Results {
		c := junitCase{Name: x.ID + ": " + x.Title, Classname: "conform." + strings.SplitN(x.ID, ".", 2)[0], Time: fmt.Sprintf("%.3f", x.Seconds)}
		switch x.Status {
		case Fail:
			s.Failures++
			c.Failure = &junitText{Message: x.Message, Body: x.Section + "\n" + strings.Join(x.Trace, "\n")}
		case NotApplicable:
			s.Skipped++
			c.Skipped = &junitText{Message: x.Message}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	return junit.Write(w, s)
}
