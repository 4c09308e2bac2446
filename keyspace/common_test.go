package keyspace

import (
	"math/rand/v2"

	"github.com/sluicehq/sluice/gcra"
)

const epoch = int64(1893456000000000000) // 2030-01-01T00:00:00Z, aligned to every period used here

const (
	ms  = int64(1e6)
	sec = int64(1e9)
)

// reply is a result as THROTTLE's five numbers.
func reply(r gcra.Result) []int64 {
	limited := int64(0)
	if r.Limited {
		limited = 1
	}
	return []int64{limited, r.Limit, r.Remaining, gcra.Seconds(r.RetryAfter), gcra.Seconds(r.ResetAfter)}
}

// randomLimit draws GCRA limits across several orders of magnitude.
func randomLimit(rng *rand.Rand) (gcra.Limit, int64, int64, int64) {
	burst := rng.Int64N(50)
	count := 1 + rng.Int64N(1000)
	period := 1 + rng.Int64N(3600)
	l, err := gcra.NewLimit(burst, count, period)
	if err != nil {
		panic(err)
	}
	return l, burst, count, period
}
