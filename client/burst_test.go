package client_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/client"
	"github.com/sluicehq/sluice/client/sluicetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBurstMeansMaxBurstEverywhere: the same limit written three ways (a
// raw THROTTLE with max_burst, a client.Limit with Burst, a policy file's
// rule with "burst") admits the same number of requests at once: burst+1.
// The Python and Node clients' Limit/limit and rule parsers produce the
// same THROTTLE arguments (their own tests check it).
func TestBurstMeansMaxBurstEverywhere(t *testing.T) {
	for _, c := range []struct {
		rule                  string // in the policy file
		maxBurst, count, secs int64  // THROTTLE's arguments
		atOnce                int    // requests admitted at one instant
	}{
		{"5000/hour burst 499", 499, 5000, 3600, 500},
		{"10/minute burst 0", 0, 10, 60, 1},
		{"3/second burst 9", 9, 3, 1, 10},
		{"50/hour", 49, 50, 3600, 50}, // no burst: all 50 at once
	} {
		t.Run(c.rule, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "policies.toml")
			require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf("[policies.p]\nlimit = %q\n", c.rule)), 0o600))
			srv := sluicetest.Start(t, sluicetest.PolicyFile(file))
			srv.FreezeClock(t, sluicetest.Epoch)
			rdb := newRedis(t, srv.Addr, 3)
			sl := client.New(rdb)
			ctx := context.Background()
			admitted := func(try func() (bool, error)) int {
				n := 0
				for range 2 * c.atOnce {
					limited, err := try()
					require.NoError(t, err)
					if !limited {
						n++
					}
				}
				return n
			}
			raw := admitted(func() (bool, error) {
				v, err := rdb.Do(ctx, "THROTTLE", "raw", c.maxBurst, c.count, c.secs, 1).Int64Slice()
				return err == nil && v[0] == 1, err
			})
			typed := admitted(func() (bool, error) {
				res, err := sl.Throttle(ctx, "typed", client.Limit{Burst: c.maxBurst, Count: c.count, Period: time.Duration(c.secs) * time.Second}, 1)
				return res.Limited, err
			})
			policy := admitted(func() (bool, error) {
				res, err := sl.PolicyThrottle(ctx, "p", "policy", 1)
				return res.Limited, err
			})
			assert.Equal(t, []int{c.atOnce, c.atOnce, c.atOnce}, []int{raw, typed, policy})
		})
	}
}
