package stack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// The parent and the helper speak one JSON request and one JSON response
// per Unix-socket connection; a dial response carries the connected socket
// as SCM_RIGHTS. One connection per request keeps slow requests (waiting for
// cards) from blocking the dials the cards need to become present.

type request struct {
	Op        string   `json:"op"` // "dial", "readers", "present", "absent"
	Port      int      `json:"port,omitempty"`
	N         int      `json:"n,omitempty"`
	Readers   []string `json:"readers,omitempty"`
	TimeoutMS int64    `json:"timeout_ms,omitempty"`
	// Early (dial): the port may not listen yet (pcscd is starting);
	// retry until it does or the timeout ends. See Stack.startHelper.
	Early bool `json:"early,omitempty"`
}

type response struct {
	Err     string   `json:"err,omitempty"`
	Readers []string `json:"readers,omitempty"`
}

// call sends req to the helper at sock and returns the response and the
// file descriptor that came with it, if any.
func call(ctx context.Context, sock string, req request) (response, *os.File, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return response{}, nil, fmt.Errorf("stack helper: %w", err)
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		_ = uc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = uc.SetDeadline(time.Now()) })
	defer stop()
	line, _ := json.Marshal(req)
	if _, err := uc.Write(append(line, '\n')); err != nil {
		return response{}, nil, fmt.Errorf("stack helper: %w", err)
	}
	var (
		buf  []byte
		file *os.File
		oob  = make([]byte, syscall.CmsgSpace(4))
		tmp  = make([]byte, 4096)
	)
	for !bytes.Contains(buf, []byte{'\n'}) {
		// Go's ReadMsgUnix passes MSG_CMSG_CLOEXEC, so the received socket
		// never leaks into programs we exec (which would keep a "removed"
		// card connected).
		n, oobn, _, _, err := uc.ReadMsgUnix(tmp, oob)
		// On a failed read (a deadline, say) n can be -1: found by the
		// soak as a slice-bounds panic in WaitPresent.
		if n > 0 {
			buf = append(buf, tmp[:n]...)
		}
		if oobn > 0 && file == nil && oobn <= len(oob) {
			file, err = parseRights(oob[:oobn])
			if err != nil {
				return response{}, nil, err
			}
		}
		if err != nil {
			if file != nil {
				file.Close()
			}
			if ctx.Err() != nil {
				return response{}, nil, fmt.Errorf("stack helper %s: %w", req.Op, ctx.Err())
			}
			return response{}, nil, fmt.Errorf("stack helper %s: %w", req.Op, err)
		}
	}
	var resp response
	if err := json.Unmarshal(buf[:bytes.IndexByte(buf, '\n')], &resp); err != nil {
		if file != nil {
			file.Close()
		}
		return response{}, nil, fmt.Errorf("stack helper: bad response: %w", err)
	}
	if resp.Err != "" {
		if file != nil {
			file.Close()
		}
		return resp, nil, fmt.Errorf("stack helper %s: %s", req.Op, resp.Err)
	}
	return resp, file, nil
}

func parseRights(oob []byte) (*os.File, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("stack helper: control message: %w", err)
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for i, fd := range fds {
			if i == 0 {
				return os.NewFile(uintptr(fd), "vpcd-conn"), nil
			}
			syscall.Close(fd)
		}
	}
	return nil, errors.New("stack helper: no descriptor in control message")
}

// serveConn handles one request on the helper side.
func serveConn(c *net.UnixConn, handle func(request) (response, *os.File)) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var req request
	var resp response
	var file *os.File
	if err := json.Unmarshal(line, &req); err != nil {
		resp.Err = "bad request: " + err.Error()
	} else {
		resp, file = handle(req)
	}
	out, _ := json.Marshal(resp)
	out = append(out, '\n')
	var oob []byte
	if file != nil {
		defer file.Close()
		oob = syscall.UnixRights(int(file.Fd()))
	}
	_, _, _ = c.WriteMsgUnix(out, oob, nil)
}
