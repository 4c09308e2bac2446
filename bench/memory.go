package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memoryLimit is the THROTTLE configuration of memory mode: one request per
// key leaves a TAT 48 minutes ahead, so every loaded key stays live while it
// is measured.
func memoryLimit() Limit { return Limit{MaxBurst: 15, Count: 30, Period: 86400, Quantity: 1} }

// Memory-mode loading: a few connections, deep pipelines.
const (
	memoryConns = 4
	memoryDepth = 512
	memoryWidth = 7 // "mem:" + 7 digits: 11-byte keys
)

// measureMemory loads keys distinct live keys into a running peer and reports
// the growth of its RSS and, where the server reports it, INFO's used_memory.
func measureMemory(ctx context.Context, p *peer, keys uint64) (MemoryResult, error) {
	m := MemoryResult{Peer: p.def.name, Keys: keys}
	if keys >= 1e7 {
		return m, fmt.Errorf("memory mode supports fewer than 10^%d keys", memoryWidth)
	}
	c, err := dial(ctx, p.addr)
	if err != nil {
		return m, err
	}
	defer c.Close()
	settle := func() { time.Sleep(500 * time.Millisecond) }

	settle()
	if m.RSSBefore, err = p.rssBytes(); err != nil {
		return m, err
	}
	m.UsedBefore = usedMemory(c)

	req, err := newRequest("mem:", memoryWidth, p.def.requestArgs(memoryLimit(), p.sha)...)
	if err != nil {
		return m, err
	}
	start := time.Now()
	if m.LimitedReplies, err = loadKeys(ctx, p.addr, req, p.def.replyKind(), keys); err != nil {
		return m, err
	}
	m.LoadSeconds = time.Since(start).Seconds()

	settle()
	if m.RSSAfter, err = p.rssBytes(); err != nil {
		return m, err
	}
	m.UsedAfter = usedMemory(c)
	m.DBSize = -1
	if v, err := c.Do(10*time.Second, "DBSIZE"); err == nil && v.Kind == ':' {
		m.DBSize = v.Int
	}
	m.RSSPerKey = float64(m.RSSAfter-m.RSSBefore) / float64(keys)
	if m.UsedBefore >= 0 && m.UsedAfter >= 0 {
		m.UsedPerKey = float64(m.UsedAfter-m.UsedBefore) / float64(keys)
	}
	return m, nil
}

// usedMemory returns INFO memory's used_memory, or -1 when the server does not
// report it.
func usedMemory(c *client) int64 {
	v, err := c.Do(10*time.Second, "INFO", "memory")
	if err != nil || v.Kind != '$' {
		return -1
	}
	for _, line := range strings.Split(v.Str, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// loadKeys sends one request for each key number in [0, keys), spread over
// memoryConns pipelined connections, and returns how many were limited
// (there should be none).
func loadKeys(ctx context.Context, addr string, tmpl request, kind replyKind, keys uint64) (uint64, error) {
	var wg sync.WaitGroup
	errs := make([]error, memoryConns)
	limited := make([]uint64, memoryConns)
	for i := 0; i < memoryConns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limited[i], errs[i] = loadStripe(ctx, addr, tmpl, kind, uint64(i), memoryConns, keys)
		}()
	}
	wg.Wait()
	var total uint64
	for _, n := range limited {
		total += n
	}
	return total, errors.Join(errs...)
}

// loadStripe sends the keys first, first+step, ... below keys on one
// connection, memoryDepth per round trip.
func loadStripe(ctx context.Context, addr string, tmpl request, kind replyKind, first, step, keys uint64) (uint64, error) {
	c, err := dial(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	req := tmpl
	req.buf = append([]byte(nil), tmpl.buf...)
	var ints [5]int64
	var limited uint64
	for k := first; k < keys; {
		n := 0
		for ; n < memoryDepth && k < keys; n++ {
			req.setKey(k)
			_, _ = c.w.Write(req.buf)
			k += step
		}
		if err := c.w.Flush(); err != nil {
			return limited, err
		}
		for i := 0; i < n; i++ {
			if kind == replyOK {
				err = c.readStatus("OK")
			} else {
				err = c.readIntArray(ints[:])
				if err == nil && ints[0] != 0 {
					limited++
				}
			}
			if err != nil {
				return limited, err
			}
		}
	}
	return limited, ctx.Err()
}
