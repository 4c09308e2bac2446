package persistence

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/keyspace"
	"github.com/stretchr/testify/require"
)

// BenchmarkRecord measures Record with the writer behind it in EverySec and
// No modes: the cost journalling adds to a keyspace change (an append under
// the store's mutex; the writer's I/O runs on its own goroutine), for GCRA
// state and for a window counter with a value.
func BenchmarkRecord(b *testing.B) {
	keys := make([][]byte, 100_000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%d", i)
	}
	value := []byte("0123456789abcdef")
	for _, mode := range []Mode{EverySec, No} {
		for _, kind := range []keyspace.Kind{keyspace.GCRA, keyspace.Window} {
			b.Run(mode.String()+"/"+kind.String(), func(b *testing.B) {
				s, err := Open(Options{Dir: b.TempDir(), Mode: mode, Logger: quiet()})
				require.NoError(b, err)
				defer s.Close()
				var n atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					c := keyspace.Change{Op: keyspace.Set, Kind: kind}
					if kind != keyspace.GCRA {
						c.Value = value
					}
					for pb.Next() {
						i := n.Add(1)
						c.Key, c.Expires = keys[i%int64(len(keys))], epoch+i
						s.Record(c)
					}
				})
				b.StopTimer()
				require.NoError(b, s.Sync())
				st := s.Stats()
				b.ReportMetric(float64(st.Recorded)/float64(max(st.Batches, 1)), "changes/batch")
			})
		}
	}
}

// BenchmarkWaitAlways measures Record followed by Wait in Always mode — the
// latency a THROTTLE reply waits for its fsync — with 1 and with many
// concurrent callers, whose waits share fsyncs (group commit).
func BenchmarkWaitAlways(b *testing.B) {
	for _, par := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("callers=%d", par), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), Mode: Always, Logger: quiet()})
			require.NoError(b, err)
			defer s.Close()
			var n atomic.Int64
			b.SetParallelism(max(1, par/2)) // GOMAXPROCS is 2 here
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				key := make([]byte, 0, 16)
				for pb.Next() {
					i := n.Add(1)
					key = fmt.Appendf(key[:0], "k%d", i%10000)
					s.Record(keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Key: key, Expires: epoch + i})
					if err := s.Wait(); err != nil {
						b.Fatal(err)
					}
				}
			})
			elapsed := time.Since(start)
			st := s.Stats()
			b.ReportMetric(float64(st.Recorded)/float64(max(st.Fsyncs, 1)), "changes/fsync")
			b.ReportMetric(float64(st.Recorded)/elapsed.Seconds(), "changes/s")
		})
	}
}

// BenchmarkRecover measures Load of SLUICE_RECOVER_KEYS live keys (default
// 1,000,000) into a fresh model: the start-up recovery time.
//
//	go test -run '^$' -bench Recover -benchtime 3x ./persistence/
func BenchmarkRecover(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("SLUICE_RECOVER_KEYS"); v != "" {
		_, err := fmt.Sscan(v, &n)
		require.NoError(b, err)
	}
	dir := b.TempDir()
	s, err := Open(Options{Dir: dir, Mode: No, Logger: quiet()})
	require.NoError(b, err)
	key := make([]byte, 0, 32)
	for i := range n {
		key = fmt.Appendf(key[:0], "api:user:%08d", i)
		s.Record(keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Created: true, Key: key, Expires: epoch + int64(i+1)})
	}
	require.NoError(b, s.Close())
	var size int64
	entries, err := os.ReadDir(dir)
	require.NoError(b, err)
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			size += info.Size()
		}
	}
	var opening, loading time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		s, err := Open(Options{Dir: dir, Mode: EverySec, Logger: quiet()})
		require.NoError(b, err)
		opening += time.Since(start)
		rec, err := s.Load(newModel(nil), epoch)
		require.NoError(b, err)
		require.Equal(b, n, rec.GCRA.Restored)
		loading += rec.Duration
		b.StopTimer()
		require.NoError(b, s.Close())
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/float64(n), "disk-bytes/key")
	b.ReportMetric(opening.Seconds()/float64(b.N), "open-s/op")
	b.ReportMetric(loading.Seconds()/float64(b.N), "load-s/op")
}

// BenchmarkFold measures folding a journal of 600,000 changes (about
// 16 MiB, the default FoldBytes) over 100,000 keys into Pebble: the fold's
// cost per journalled change, which the server pays in the background.
//
//	go test -run '^$' -bench Fold -benchtime 5x ./persistence/
func BenchmarkFold(b *testing.B) {
	const changes, keys = 600_000, 100_000
	s, err := Open(Options{Dir: b.TempDir(), Mode: No, Logger: quiet(), FoldBytes: 1 << 40})
	require.NoError(b, err)
	defer s.Close()
	key := make([]byte, 0, 32)
	seg := uint64(1000) // beyond the writer's, which writes none
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		var p pendingLog
		for i := range changes {
			key = fmt.Appendf(key[:0], "bench:%07d", (i*7919)%keys)
			p.append(keyspace.Change{Op: keyspace.Set, Kind: keyspace.GCRA, Key: key, Expires: epoch + int64(i+1)}, kindCode(keyspace.GCRA))
		}
		writeSegment(b, s, seg, p.take(nil))
		seg++
		b.StartTimer()
		f, err := s.foldSegments(seg, false)
		require.NoError(b, err)
		require.Equal(b, changes, f.changes)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*changes), "ns/change")
}
