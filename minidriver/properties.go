package minidriver

import (
	"context"
	"fmt"
)

// FreeSpace is CardQueryFreeSpace.
type FreeSpace struct {
	ContainersAvailable int
	MaxContainers       int
}

// QueryFreeSpace counts free container slots: invalid (zeroed) cmapfile
// records plus room to append, up to Options.MaxContainers.
func (c *Card) QueryFreeSpace(ctx context.Context) (FreeSpace, error) {
	cmap, err := c.Containers(ctx)
	if err != nil {
		return FreeSpace{}, fmt.Errorf("CardQueryFreeSpace: %w", err)
	}
	used := 0
	for i := range cmap {
		if cmap.Valid(i) {
			used++
		}
	}
	return FreeSpace{ContainersAvailable: max(0, c.opts.MaxContainers-used), MaxContainers: c.opts.MaxContainers}, nil
}

// KeySizes is CP_CARD_KEYSIZES for AT_KEYEXCHANGE and AT_SIGNATURE.
type KeySizes struct{ Min, Default, Max, Increment int }

// Properties is what CardGetProperty answers for the properties the host
// model uses.
type Properties struct {
	CacheMode CacheMode
	ReadOnly  bool
	KeySizes  KeySizes
	FreeSpace FreeSpace
	CardID    string
}

// GetProperties reads them all.
func (c *Card) GetProperties(ctx context.Context) (Properties, error) {
	fsp, err := c.QueryFreeSpace(ctx)
	if err != nil {
		return Properties{}, err
	}
	return Properties{
		CacheMode: c.opts.CacheMode,
		ReadOnly:  c.opts.ReadOnly,
		KeySizes:  KeySizes{Min: 1024, Default: 2048, Max: 4096, Increment: 1024},
		FreeSpace: fsp,
		CardID:    c.cardID.String(),
	}, nil
}
