//go:build !linux

package stack

import (
	"context"

	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/vpcd"
)

// Stack is a private pcscd; on this platform it cannot be started.
type Stack struct{}

// Start reports ErrUnsupported outside Linux.
func Start(context.Context, Config) (*Stack, error) { return nil, ErrUnsupported }

// The methods exist so that code using stacks builds everywhere.

func (*Stack) SocketPath() string                                         { return "" }
func (*Stack) Env() []string                                              { return nil }
func (*Stack) Dir() string                                                { return "" }
func (*Stack) Slots() []Slot                                              { return nil }
func (*Stack) Insert(int, vcard.Card, ...vpcd.Option) (*vpcd.Link, error) { return nil, ErrUnsupported }
func (*Stack) WaitPresent(context.Context, ...int) error                  { return ErrUnsupported }
func (*Stack) WaitAbsent(context.Context, ...int) error                   { return ErrUnsupported }
func (*Stack) Dialer(int) vpcd.DialFunc                                   { return nil }
func (*Stack) Close() error                                               { return nil }
func (*Stack) Eject(int) error                                            { return ErrUnsupported }
func (*Stack) Restart(context.Context, []vcard.Card) error                { return ErrUnsupported }
func (*Stack) Done() <-chan struct{}                                      { return nil }
func (*Stack) Err() error                                                 { return nil }

// Preflight reports ErrUnsupported outside Linux.
func Preflight(Config) error { return ErrUnsupported }
