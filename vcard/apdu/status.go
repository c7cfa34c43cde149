package apdu

import "fmt"

// Status is an ISO 7816-4 status word (SW1 in the high byte, SW2 in the
// low byte).
//
// Status implements error so that card-side handlers can return a status
// word through ordinary Go error paths (return apdu.SWFileNotFound,
// fmt.Errorf("load key: %w", apdu.SWReferenceDataNotFound)) and let the
// dispatcher recover it with errors.As. Because Status is a comparable
// value type, errors.Is(err, apdu.SWFileNotFound) works without help; the
// Is method only adds the family matches described there.
//
// SWOK is also a Status and therefore an error value; never return it as
// an error, test with OK instead.
type Status uint16

// Status words used by the GIDS card and its transport layer. Names follow
// the ISO 7816-4 §5.6 meaning; where GidsApplet or OpenSC use a status in a
// narrower sense, docs/reference/gids-protocol.md §2.16 is the reference.
const (
	SWOK Status = 0x9000 // normal processing

	// SWBytesRemaining is the 61xx family: SW2 says how many response
	// bytes GET RESPONSE can still fetch (00 = 256 or more). Build a
	// concrete value with BytesRemaining.
	SWBytesRemaining Status = 0x6100

	SWDataCorrupted Status = 0x6281 // part of returned data may be corrupted
	SWEndOfFile     Status = 0x6282 // end of file or record reached before reading Ne bytes
	SWTerminated    Status = 0x6285 // selected file in termination state (GidsApplet: application terminated)

	// SWVerifyFailed is 6300, verification failed without a counter. A
	// 63Cx value built with RetriesLeft matches it under errors.Is, so a
	// caller can ask "did verification fail" without caring about x.
	SWVerifyFailed Status = 0x6300

	SWMemoryFailure Status = 0x6581 // memory failure

	SWWrongLength Status = 0x6700 // wrong length; no further indication

	SWLogicalChannelNotSupported Status = 0x6881
	SWSMNotSupported             Status = 0x6882 // secure messaging not supported
	SWLastCommandExpected        Status = 0x6883 // last command of the chain expected
	SWChainingNotSupported       Status = 0x6884 // command chaining not supported

	SWCommandNotAllowed            Status = 0x6900 // command not allowed; no further indication (GIDS: chain interrupted)
	SWIncompatibleFileStructure    Status = 0x6981 // command incompatible with file structure
	SWSecurityStatusNotSatisfied   Status = 0x6982
	SWAuthMethodBlocked            Status = 0x6983 // authentication method blocked (PIN blocked)
	SWReferenceDataNotUsable       Status = 0x6984 // reference data not usable (GidsApplet: invalid data)
	SWConditionsNotSatisfied       Status = 0x6985 // conditions of use not satisfied
	SWCommandNotAllowedNoCurrentEF Status = 0x6986 // command not allowed (no current EF)

	SWWrongData              Status = 0x6A80 // incorrect parameters in the command data field
	SWFuncNotSupported       Status = 0x6A81 // function not supported
	SWFileNotFound           Status = 0x6A82 // file or application not found
	SWRecordNotFound         Status = 0x6A83
	SWNotEnoughMemory        Status = 0x6A84 // not enough memory space in the file
	SWIncorrectP1P2          Status = 0x6A86 // incorrect parameters P1-P2
	SWLcInconsistentWithP1P2 Status = 0x6A87 // Nc inconsistent with parameters P1-P2
	SWReferencedDataNotFound Status = 0x6A88 // referenced data or reference data not found
	SWFileExists             Status = 0x6A89 // file already exists
	SWWrongP1P2              Status = 0x6B00 // wrong parameters P1-P2
	SWWrongLe                Status = 0x6C00 // 6Cxx family: wrong Le, SW2 = exact length; see ExactLength
	SWINSNotSupported        Status = 0x6D00 // instruction code not supported or invalid
	SWCLANotSupported        Status = 0x6E00 // class not supported
	SWUnknown                Status = 0x6F00 // no precise diagnosis
)

// RetriesLeft returns 63Cx, the "verification failed, x further retries
// allowed" status. ISO 7816-4 only has four bits for x, so n is clamped to
// 0..15 rather than silently wrapping into a wrong counter.
func RetriesLeft(n int) Status {
	return SWVerifyFailed | 0xC0 | Status(clamp(n, 0, 15))
}

// BytesRemaining returns 61xx for n further response bytes. SW2 is one
// byte, so ISO encodes 256 or more as 00.
func BytesRemaining(n int) Status {
	return SWBytesRemaining | Status(byte(clamp(n, 0, 256)))
}

// ExactLength returns 6Cxx: the command's Le was wrong and n bytes are
// available (00 = 256).
func ExactLength(n int) Status {
	return SWWrongLe | Status(byte(clamp(n, 0, 256)))
}

func clamp(n, lo, hi int) int {
	if n < lo {
		return lo
	}
	if n > hi {
		return hi
	}
	return n
}

// SW1 returns the first status byte.
func (s Status) SW1() byte { return byte(s >> 8) }

// SW2 returns the second status byte.
func (s Status) SW2() byte { return byte(s) }

// OK reports whether s is exactly 9000. 61xx is also "normal processing"
// in ISO terms, but on the card side it is produced by Session, never by a
// handler, so OK deliberately stays narrow.
func (s Status) OK() bool { return s == SWOK }

// Retries returns x for a 63Cx status and ok=false for anything else.
func (s Status) Retries() (n int, ok bool) {
	if s&0xFFF0 != 0x63C0 {
		return 0, false
	}
	return int(s & 0x0F), true
}

// isError reports whether s is an execution or checking error (SW1
// 64..6F). ISO 7816-4 §5.1.3 sends no response data with those, which is
// why Session drops handler data accompanying them.
func (s Status) isError() bool {
	sw1 := s.SW1()
	return sw1 >= 0x64 && sw1 <= 0x6F
}

// valid reports whether s can appear on the wire as a status word at all:
// SW1 must be 61..6F or 90..9F (ISO 7816-3 §10.3.3; 60 is the T=0 NULL
// byte, not a status).
func (s Status) valid() bool {
	sw1 := s.SW1()
	return (sw1 >= 0x61 && sw1 <= 0x6F) || (sw1 >= 0x90 && sw1 <= 0x9F)
}

// Is lets errors.Is treat a status with a parameter in SW2 as a member of
// its family, so code can test for the condition without knowing the
// parameter:
//
//	errors.Is(RetriesLeft(2), SWVerifyFailed)     // true: 63Cx matches 6300
//	errors.Is(BytesRemaining(5), SWBytesRemaining) // true: 61xx matches 6100
//	errors.Is(ExactLength(5), SWWrongLe)           // true: 6Cxx matches 6C00
//
// Only the family base (SW2 = 00, or 6300 for 63Cx) matches broadly; any
// other target must be equal, which errors.Is already checks with ==.
// The relation is one-way: errors.Is(SWVerifyFailed, RetriesLeft(2)) is
// false.
func (s Status) Is(target error) bool {
	t, ok := target.(Status)
	if !ok {
		return false
	}
	switch t {
	case SWVerifyFailed:
		return s&0xFFF0 == 0x63C0
	case SWBytesRemaining:
		return s.SW1() == 0x61
	case SWWrongLe:
		return s.SW1() == 0x6C
	}
	return false
}

// Error returns the status word in hex followed by its ISO 7816-4 meaning,
// e.g. "6A82 file or application not found".
func (s Status) Error() string {
	return fmt.Sprintf("%04X %s", uint16(s), s.meaning())
}

// String is the same as Error, so %v, %s and log output agree whether the
// value is held as a Status or as an error.
func (s Status) String() string { return s.Error() }

var meanings = map[Status]string{
	SWOK:                           "success",
	SWDataCorrupted:                "part of returned data may be corrupted",
	SWEndOfFile:                    "end of file or record reached before reading Ne bytes",
	SWTerminated:                   "selected file in termination state",
	SWVerifyFailed:                 "verification failed",
	SWMemoryFailure:                "memory failure",
	SWWrongLength:                  "wrong length",
	SWLogicalChannelNotSupported:   "logical channel not supported",
	SWSMNotSupported:               "secure messaging not supported",
	SWLastCommandExpected:          "last command of the chain expected",
	SWChainingNotSupported:         "command chaining not supported",
	SWCommandNotAllowed:            "command not allowed",
	SWIncompatibleFileStructure:    "command incompatible with file structure",
	SWSecurityStatusNotSatisfied:   "security status not satisfied",
	SWAuthMethodBlocked:            "authentication method blocked",
	SWReferenceDataNotUsable:       "reference data not usable",
	SWConditionsNotSatisfied:       "conditions of use not satisfied",
	SWCommandNotAllowedNoCurrentEF: "command not allowed (no current EF)",
	SWWrongData:                    "incorrect parameters in the command data field",
	SWFuncNotSupported:             "function not supported",
	SWFileNotFound:                 "file or application not found",
	SWRecordNotFound:               "record not found",
	SWNotEnoughMemory:              "not enough memory space in the file",
	SWIncorrectP1P2:                "incorrect parameters P1-P2",
	SWLcInconsistentWithP1P2:       "Nc inconsistent with parameters P1-P2",
	SWReferencedDataNotFound:       "referenced data not found",
	SWFileExists:                   "file already exists",
	SWWrongP1P2:                    "wrong parameters P1-P2",
	SWINSNotSupported:              "instruction code not supported or invalid",
	SWCLANotSupported:              "class not supported",
	SWUnknown:                      "no precise diagnosis",
}

// sw1Meanings gives the ISO 7816-4 category for status words without a
// specific entry, so an unexpected SW from a peer still prints as
// something a reader can act on.
var sw1Meanings = map[byte]string{
	0x62: "warning, state of non-volatile memory unchanged",
	0x63: "warning, state of non-volatile memory changed",
	0x64: "execution error, state of non-volatile memory unchanged",
	0x65: "execution error, state of non-volatile memory changed",
	0x66: "security-related issue",
	0x67: "wrong length",
	0x68: "functions in CLA not supported",
	0x69: "command not allowed",
	0x6A: "wrong parameters P1-P2",
	0x6B: "wrong parameters P1-P2",
	0x6D: "instruction code not supported or invalid",
	0x6E: "class not supported",
	0x6F: "no precise diagnosis",
}

func (s Status) meaning() string {
	if m, ok := meanings[s]; ok {
		return m
	}
	if n, ok := s.Retries(); ok {
		return fmt.Sprintf("verification failed, %d retries left", n)
	}
	switch s.SW1() {
	case 0x61:
		if s.SW2() == 0 {
			return "256 or more response bytes available"
		}
		return fmt.Sprintf("%d response bytes available", s.SW2())
	case 0x6C:
		n := int(s.SW2())
		if n == 0 {
			n = 256
		}
		return fmt.Sprintf("wrong Le, %d bytes available", n)
	}
	if s.SW1()&0xF0 == 0x90 {
		return "normal processing (proprietary)"
	}
	if m, ok := sw1Meanings[s.SW1()]; ok {
		return m
	}
	return "invalid status word"
}
