package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// dist is a key distribution.
type dist int

const (
	distHot     dist = iota // every request on key 0
	distUniform             // uniform over [0, n)
	distZipf                // Zipf over [0, n): key 0 the most popular
)

func (d dist) String() string {
	switch d {
	case distHot:
		return "hot"
	case distUniform:
		return "uniform"
	case distZipf:
		return "zipf"
	}
	return "dist(" + strconv.Itoa(int(d)) + ")"
}

// keyPicker draws key numbers for one connection. It is not safe for
// concurrent use; each connection has its own, seeded differently.
type keyPicker struct {
	kind dist
	n    uint64
	rng  *rand.Rand
	zipf *rand.Zipf
}

// newKeyPicker returns a picker over n keys. For distZipf, s (> 1) and v (>= 1)
// are math/rand/v2's Zipf parameters: P(k) is proportional to (v+k)^-s.
func newKeyPicker(kind dist, n uint64, s, v float64, seed1, seed2 uint64) (*keyPicker, error) {
	if n == 0 {
		return nil, fmt.Errorf("key picker: need at least one key")
	}
	p := &keyPicker{kind: kind, n: n, rng: rand.New(rand.NewPCG(seed1, seed2))}
	if kind == distZipf {
		if s <= 1 || v < 1 {
			return nil, fmt.Errorf("key picker: zipf needs s > 1 and v >= 1 (got s=%g v=%g)", s, v)
		}
		p.zipf = rand.NewZipf(p.rng, s, v, n-1)
	}
	return p, nil
}

// next returns the next key number, in [0, n).
func (p *keyPicker) next() uint64 {
	switch p.kind {
	case distUniform:
		return p.rng.Uint64N(p.n)
	case distZipf:
		return p.zipf.Uint64()
	default:
		return 0
	}
}

// keyWidth is the number of decimal digits needed for key numbers below n.
func keyWidth(n uint64) int {
	if n <= 1 {
		return 1
	}
	return len(strconv.FormatUint(n-1, 10))
}

// request is one pre-encoded command whose key is a fixed-width run of
// decimal digits inside buf. Setting a key rewrites those digits in place, so
// sending a request is a single copy into the connection's write buffer.
type request struct {
	buf    []byte
	keyOff int // index of the key's first digit in buf
	width  int // number of digits
}

// keyPlaceholder marks the key argument in newRequest's args.
const keyPlaceholder = "\x00key\x00"

// newRequest encodes args as a RESP command. Exactly one argument must be
// keyPlaceholder; it is replaced by prefix followed by width digits (key 0).
func newRequest(prefix string, width int, args ...string) (request, error) {
	if width < 1 {
		return request{}, fmt.Errorf("request: key width %d < 1", width)
	}
	key := keyName(prefix, width, 0)
	r := request{width: width, keyOff: -1}
	r.buf = append(r.buf, '*')
	r.buf = strconv.AppendInt(r.buf, int64(len(args)), 10)
	r.buf = append(r.buf, '\r', '\n')
	for _, a := range args {
		if a == keyPlaceholder {
			if r.keyOff >= 0 {
				return request{}, fmt.Errorf("request: more than one key placeholder")
			}
			a = key
			r.keyOff = len(r.buf) + 1 + len(strconv.Itoa(len(a))) + 2 + len(prefix)
		}
		r.buf = appendBulk(r.buf, a)
	}
	if r.keyOff < 0 {
		return request{}, fmt.Errorf("request: no key placeholder")
	}
	return r, nil
}

// setKey writes key number k (which must be below 10^width) into the request.
func (r *request) setKey(k uint64) {
	b := r.buf[r.keyOff : r.keyOff+r.width]
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + k%10)
		k /= 10
	}
}

// keyName returns the key string that setKey(k) sends, for tests and probes.
func keyName(prefix string, width int, k uint64) string {
	s := strconv.FormatUint(k, 10)
	for len(s) < width {
		s = "0" + s
	}
	return prefix + s
}
