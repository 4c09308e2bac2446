package server

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Bytes is a size in bytes that flags, SLUICE_* variables and config files
// write with Redis's memory units, as redis.conf does: a plain number, or
// one followed by b, k, kb, m, mb, g or gb, case-insensitive, where k, m and
// g are powers of 1000 and kb, mb and gb powers of 1024 ("100mb", "1gb",
// "64k"). CONFIG GET shows the number of bytes, as Redis does.
type Bytes int64

// byteUnits are Redis's memory units, longest first.
var byteUnits = []struct {
	suffix string
	scale  int64
}{
	{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10},
	{"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1},
}

// errBytes is the reason a size does not parse.
var errBytes = errors.New("want bytes as a number, optionally followed by b, k, kb, m, mb, g or gb")

// Set parses s (flag.Value).
func (b *Bytes) Set(s string) error {
	text := strings.ToLower(strings.TrimSpace(s))
	scale := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(text, u.suffix) {
			text, scale = strings.TrimSuffix(text, u.suffix), u.scale
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/scale {
		return errBytes // the caller names the setting and the value
	}
	*b = Bytes(n * scale)
	return nil
}

// String spells b in the largest binary unit that divides it ("256mb"),
// or as a plain number (flag.Value; --help shows defaults so).
func (b Bytes) String() string {
	for _, u := range byteUnits[:3] {
		if b != 0 && int64(b)%u.scale == 0 {
			return strconv.FormatInt(int64(b)/u.scale, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
