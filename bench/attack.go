package main

import (
	"context"
	"net"
	"sync"
	"time"
)

// attack is hostile traffic run beside a measurement: connections that
// trickle one byte of a command per second (slowloris) and one connection
// that pipelines THROTTLE without ever reading a reply. It shows what
// well-behaved clients lose while a server is under that abuse.
type attack struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// slowRequest is what each slowloris connection trickles, a byte a second.
const slowRequest = "*5\r\n$8\r\nTHROTTLE\r\n$4\r\nslow\r\n$2\r\n15\r\n$2\r\n30\r\n$2\r\n60\r\n"

// startAttack opens slowloris connections and one non-reading flood to addr.
// Everything stops, and every connection closes, when stop is called or ctx
// ends; a flood connection the server closes is reopened.
func startAttack(ctx context.Context, addr string, slowloris int) *attack {
	ctx, cancel := context.WithCancel(ctx)
	a := &attack{cancel: cancel}
	for i := 0; i < slowloris; i++ {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.slowloris(ctx, addr)
		}()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.flood(ctx, addr)
	}()
	return a
}

func (a *attack) stop() {
	a.cancel()
	a.wg.Wait()
}

func (a *attack) slowloris(ctx context.Context, addr string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i = (i + 1) % len(slowRequest) {
		if _, err := conn.Write([]byte{slowRequest[i]}); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (a *attack) flood(ctx context.Context, addr string) {
	batch := make([]byte, 0, 64<<10)
	for len(batch)+len(slowRequest)+10 < cap(batch) {
		batch = append(batch, slowRequest...)
		batch = append(batch, "$1\r\n1\r\n"...)
	}
	var d net.Dialer
	for ctx.Err() == nil {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		for {
			if _, err := conn.Write(batch); err != nil {
				break // the server gave up on us (write timeout), or we are done
			}
		}
		stop()
		conn.Close()
	}
}
