package main

import (
	"math"
	"testing"
)

func TestHotPicker(t *testing.T) {
	p, err := newKeyPicker(distHot, 1, 0, 0, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if k := p.next(); k != 0 {
			t.Fatalf("hot picker returned %d", k)
		}
	}
}

// TestUniformPicker checks the range and, with a chi-square statistic over
// 100 cells, that the draws are close to uniform.
func TestUniformPicker(t *testing.T) {
	const n, draws, cells = 100_000, 200_000, 100
	p, err := newKeyPicker(distUniform, n, 0, 0, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	var count [cells]float64
	for i := 0; i < draws; i++ {
		k := p.next()
		if k >= n {
			t.Fatalf("key %d out of [0, %d)", k, n)
		}
		count[k*cells/n]++
	}
	want := float64(draws) / cells
	var chi2 float64
	for _, c := range count {
		chi2 += (c - want) * (c - want) / want
	}
	// 99 degrees of freedom: the 99.99th percentile is about 160.
	if chi2 > 160 {
		t.Fatalf("chi-square %.1f over %d cells: not uniform", chi2, cells)
	}
}

// TestZipfPicker checks the range, that the most popular keys come first
// and that their shares follow (1+k)^-s.
func TestZipfPicker(t *testing.T) {
	const n, draws, s = 1_000_000, 400_000, 1.1
	p, err := newKeyPicker(distZipf, n, s, 1, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	count := map[uint64]float64{}
	for i := 0; i < draws; i++ {
		k := p.next()
		if k >= n {
			t.Fatalf("key %d out of [0, %d)", k, n)
		}
		count[k]++
	}
	for k := uint64(0); k < 5; k++ {
		if count[k] <= count[k+1] {
			t.Errorf("key %d drawn %v times, key %d %v: want decreasing popularity", k, count[k], k+1, count[k+1])
		}
		// P(k)/P(0) = (1+k)^-s for v = 1.
		want := math.Pow(float64(1+k), -s)
		got := count[k] / count[0]
		if math.Abs(got-want) > 0.1*want {
			t.Errorf("share of key %d relative to key 0 = %.3f, want %.3f", k, got, want)
		}
	}
	if len(count) < 1000 {
		t.Errorf("only %d distinct keys in %d draws: the tail is missing", len(count), draws)
	}
}

func TestPickerDeterministicPerSeed(t *testing.T) {
	for _, d := range []dist{distUniform, distZipf} {
		a, _ := newKeyPicker(d, 1000, 1.2, 1, 5, 9)
		b, _ := newKeyPicker(d, 1000, 1.2, 1, 5, 9)
		c, _ := newKeyPicker(d, 1000, 1.2, 1, 5, 10)
		same, differ := true, false
		for i := 0; i < 100; i++ {
			x, y, z := a.next(), b.next(), c.next()
			same = same && x == y
			differ = differ || x != z
		}
		if !same || !differ {
			t.Errorf("%s: same seed same sequence %v, other seed other sequence %v", d, same, differ)
		}
	}
}

func TestPickerErrors(t *testing.T) {
	if _, err := newKeyPicker(distUniform, 0, 0, 0, 1, 1); err == nil {
		t.Error("zero keys accepted")
	}
	if _, err := newKeyPicker(distZipf, 10, 1, 1, 1, 1); err == nil {
		t.Error("zipf s = 1 accepted")
	}
}

func TestKeyWidth(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		want int
	}{{0, 1}, {1, 1}, {10, 1}, {11, 2}, {100_000, 5}, {100_001, 6}, {1_000_000, 6}} {
		if got := keyWidth(c.n); got != c.want {
			t.Errorf("keyWidth(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestRequestSetKey(t *testing.T) {
	r, err := newRequest("bench:", 6, "THROTTLE", keyPlaceholder, "15", "30", "60", "1")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []uint64{0, 7, 42, 999_999} {
		r.setKey(k)
		want := string(appendCommand(nil, "THROTTLE", keyName("bench:", 6, k), "15", "30", "60", "1"))
		if string(r.buf) != want {
			t.Fatalf("key %d: encoded %q, want %q", k, r.buf, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { r.setKey(123) }); n != 0 {
		t.Fatalf("setKey allocates %v times", n)
	}
	if _, err := newRequest("k", 3, "GET", "x"); err == nil {
		t.Error("request without a key placeholder accepted")
	}
	if _, err := newRequest("k", 3, "MGET", keyPlaceholder, keyPlaceholder); err == nil {
		t.Error("request with two key placeholders accepted")
	}
}

func BenchmarkZipfPicker(b *testing.B) {
	b.ReportAllocs()
	p, _ := newKeyPicker(distZipf, 1_000_000, 1.1, 1, 1, 1)
	for b.Loop() {
		p.next()
	}
}
