package resp

import (
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// fuzzLimits are small so the fuzzer reaches every limit quickly.
func fuzzLimits() readerLimits {
	return readerLimits{
		maxBulk:        1024,
		maxArgs:        64,
		maxInline:      512,
		maxQuery:       4096,
		preAuthArgs:    4,
		preAuthBulkLen: 16,
	}
}

// fuzzParse is parseStream without testing.TB checks in the hot loop.
func fuzzParse(t *testing.T, src io.Reader, lim readerLimits, preAuth bool) (cmds [][]string, errMsg string) {
	rd := newReader(lim, nil)
	for iter := 0; ; iter++ {
		if iter > 1<<20 {
			t.Fatal("reader loop does not terminate")
		}
		for {
			args, err := rd.next(preAuth)
			if err != nil {
				return cmds, err.Error()
			}
			if args == nil {
				break
			}
			if len(args) == 0 || int64(len(args)) > lim.maxArgs {
				t.Fatalf("bad arg count %d", len(args))
			}
			cmd := make([]string, len(args))
			for i, a := range args {
				cmd[i] = string(a)
			}
			cmds = append(cmds, cmd)
		}
		_, err := rd.fill(src)
		if len(rd.buf) > lim.maxQuery || rd.r < 0 || rd.r > rd.w || rd.w > len(rd.buf) {
			t.Fatalf("bad buffer state: len=%d r=%d w=%d", len(rd.buf), rd.r, rd.w)
		}
		if err != nil {
			var perr *protocolError
			if errors.As(err, &perr) {
				return cmds, err.Error()
			}
			return cmds, ""
		}
	}
}

// FuzzReader feeds arbitrary bytes in arbitrary chunkings: the reader must
// never panic, loop forever or exceed its buffer cap, and the result must
// not depend on the chunking.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$9223372036854775807\r\nx",
		"*1\r\n$9223372036854775808\r\nx",
		"*1\r\n$99999999999999999999\r\nx",
		"*1000000000\r\n",
		"*3000000000\r\n",
		"*-10\r\n*0\r\n",
		"*1\r\n$-1\r\n",
		"*1\r\n$+5\r\nhello\r\n",
		"*1\r\n*1\r\n$1\r\nx\r\n",
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n",
		"SET \"a\\x41\\n\" 'b\\'c'\r\nPING\n",
		"SET \"unbalanced\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
		"*6\r\n$11\r\nCL.THROTTLE\r\n$7\r\nuser123\r\n$2\r\n15\r\n$2\r\n30\r\n$2\r\n60\r\n$1\r\n1\r\n",
	} {
		f.Add([]byte(s), uint64(0))
		f.Add([]byte(s), uint64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		lim := fuzzLimits()
		preAuth := seed&1 == 1
		whole, wholeErr := fuzzParse(t, &chunkReader{data: clone(data)}, lim, preAuth)
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		chunks := make([]int, 1+rng.IntN(16))
		for i := range chunks {
			chunks[i] = 1 + rng.IntN(64)
		}
		chunked, chunkedErr := fuzzParse(t, &chunkReader{data: clone(data), chunks: chunks}, lim, preAuth)
		if wholeErr != chunkedErr || len(whole) != len(chunked) {
			t.Fatalf("chunking changed the result: %q/%d vs %q/%d", wholeErr, len(whole), chunkedErr, len(chunked))
		}
		for i := range whole {
			if len(whole[i]) != len(chunked[i]) {
				t.Fatalf("command %d differs", i)
			}
			for j := range whole[i] {
				if whole[i][j] != chunked[i][j] {
					t.Fatalf("command %d arg %d differs", i, j)
				}
			}
		}
	})
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
