package pcsc

import (
	"fmt"
	"os"
	"strings"
)

// UnknownReaderError: the reader a user named is not one pcscd knows.
// It lists the readers pcscd does see, so the right name can be copied.
type UnknownReaderError struct {
	Reader  string
	Socket  string   // the pcscd asked ("" = the system one)
	Readers []string // what that pcscd sees
}

func (e *UnknownReaderError) Error() string {
	where := "the system pcscd"
	if e.Socket != "" {
		where = "the pcscd at " + e.Socket
	}
	if len(e.Readers) == 0 {
		return fmt.Sprintf("reader %q: %s sees no readers", e.Reader, where)
	}
	return fmt.Sprintf("reader %q: %s does not know it; it sees:\n  %s", e.Reader, where, strings.Join(e.Readers, "\n  "))
}

// Is matches ErrUnknownReader.
func (e *UnknownReaderError) Is(t error) bool { return t == ErrUnknownReader }

// CheckReader returns nil if pcscd knows reader, else an
// *UnknownReaderError listing the readers it sees.
func (c *Client) CheckReader(reader string) error {
	rs, err := c.Readers()
	if err != nil {
		return err
	}
	for _, r := range rs {
		if r == reader {
			return nil
		}
	}
	return &UnknownReaderError{Reader: reader, Socket: os.Getenv(SocketEnv), Readers: rs}
}
