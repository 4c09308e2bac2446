package compat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

func goRedis(t *testing.T, addr string, proto, poolSize int) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto, PoolSize: poolSize, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// assertRESP checks the client's connections really speak RESP<proto>.
func assertRESP(t *testing.T, rdb *redis.Client, proto int) {
	t.Helper()
	info, err := rdb.Do(context.Background(), "CLIENT", "INFO").Text()
	if err != nil || !strings.Contains(info, fmt.Sprintf(" resp=%d ", proto)) {
		t.Fatalf("CLIENT INFO %q %v: want resp=%d", info, err, proto)
	}
}

func anyArgs(ss ...string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// checkReply compares one go-redis result with the step's expectation.
func checkReply(t *testing.T, st step, v any, err error) {
	t.Helper()
	if st.Error != "" {
		if err == nil || err.Error() != st.Error {
			t.Errorf("%s: %q replied %v, %v; want error %q", st.Name, st.Args, v, err, st.Error)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %q: %v", st.Name, st.Args, err)
		return
	}
	if got := fmt.Sprint(v); got != fmt.Sprint(anySlice(st.Reply)) {
		t.Errorf("%s: %q replied %s, want %v", st.Name, st.Args, got, st.Reply)
	}
	for i, x := range v.([]any) {
		if _, ok := x.(int64); !ok {
			t.Errorf("%s: element %d is %T, want int64", st.Name, i, x)
		}
	}
}

func anySlice(ns []int64) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = n
	}
	return out
}

// TestGoRedis replays the sequence with go-redis v9, one command at a time
// and then as one pipeline, in RESP2 and RESP3.
func TestGoRedis(t *testing.T) {
	seq := loadSequence(t)
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rdb := goRedis(t, startSluice(t).Addr, proto, 10)
			assertRESP(t, rdb, proto)
			clock := int64(-1)
			for _, st := range seq.Steps {
				if now := seq.clock(st); now != clock {
					if err := rdb.Do(ctx, "DEBUG", "CLOCK", "SET", now).Err(); err != nil {
						t.Fatal(err)
					}
					clock = now
				}
				v, err := rdb.Do(ctx, anyArgs(st.Args...)...).Result()
				checkReply(t, st, v, err)
			}
		})
		t.Run(fmt.Sprintf("RESP%d-pipeline", proto), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rdb := goRedis(t, startSluice(t).Addr, proto, 10)
			pipe := rdb.Pipeline()
			cmds := make([]*redis.Cmd, len(seq.Steps))
			clock := int64(-1)
			for i, st := range seq.Steps {
				if now := seq.clock(st); now != clock {
					pipe.Do(ctx, "DEBUG", "CLOCK", "SET", now)
					clock = now
				}
				cmds[i] = pipe.Do(ctx, anyArgs(st.Args...)...)
			}
			_, _ = pipe.Exec(ctx) // the first error; every command is checked below
			for i, st := range seq.Steps {
				v, err := cmds[i].Result()
				checkReply(t, st, v, err)
			}
		})
	}
}

// TestGoRedisPool100: 100 goroutines on a pool of 100 connections hammer one
// key at a frozen instant; exactly the limit is admitted.
func TestGoRedisPool100(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rdb := goRedis(t, startSluice(t).Addr, proto, 100)
			assertRESP(t, rdb, proto)
			if err := rdb.Do(ctx, "DEBUG", "CLOCK", "SET", int64(1893456000000000000)).Err(); err != nil {
				t.Fatal(err)
			}
			const workers, calls, limit = 100, 4, 150 // 400 calls, 150 fit
			var mu sync.Mutex
			admitted, refused := 0, 0
			var wg sync.WaitGroup
			start := make(chan struct{})
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for c := 0; c < calls; c++ {
						v, err := rdb.Do(ctx, "THROTTLE", "shared", limit-1, limit, 60, 1).Int64Slice()
						if err != nil || len(v) != 5 || v[1] != limit {
							t.Errorf("THROTTLE: %v %v", v, err)
							return
						}
						mu.Lock()
						if v[0] == 0 {
							admitted++
						} else {
							refused++
						}
						mu.Unlock()
					}
				}()
			}
			close(start)
			wg.Wait()
			if admitted != limit || refused != workers*calls-limit {
				t.Errorf("admitted %d, refused %d; want %d and %d", admitted, refused, limit, workers*calls-limit)
			}
			st := rdb.PoolStats()
			if st.TotalConns < 2 || st.TotalConns > 100 {
				t.Errorf("pool holds %d connections; want several, at most 100", st.TotalConns)
			}
			t.Logf("pool: %d connections, %d hits, %d misses, %d timeouts", st.TotalConns, st.Hits, st.Misses, st.Timeouts)
		})
	}
}
