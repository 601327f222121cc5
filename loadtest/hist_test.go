package main

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func TestHistIndexBounds(t *testing.T) {
	// Every value must land in a bucket whose bounds contain it, and buckets must be contiguous.
	prevEnd := int64(0)
	for i := range histBuckets {
		lo, w := histBounds(i)
		if lo != prevEnd {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevEnd)
		}
		prevEnd = lo + w
		for _, v := range []int64{lo, lo + w - 1} {
			if got := histIndex(v); got != i {
				t.Fatalf("histIndex(%d) = %d, want %d", v, got, i)
			}
		}
	}
	if prevEnd-1 != histMaxVal {
		t.Fatalf("last bucket ends at %d, want %d", prevEnd-1, histMaxVal)
	}
	if histIndex(-5) != 0 || histIndex(1<<62) != histBuckets-1 {
		t.Fatal("out-of-range values are not clamped")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Count() != 0 {
		t.Fatal("empty histogram is not zero")
	}
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 100_000)
	for i := range vals {
		vals[i] = int64(r.ExpFloat64() * 2e6) // around 2 ms
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if diff := float64(got-exact) / float64(exact); diff > 0.01 || diff < -0.01 {
			t.Errorf("q%.3f = %d, exact %d (%.2f%% off)", q, got, exact, diff*100)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] || h.Quantile(1) != vals[len(vals)-1] {
		t.Errorf("max %d min %d q1 %d, want %d %d", h.Max(), h.Min(), h.Quantile(1), vals[len(vals)-1], vals[0])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count %d", h.Count())
	}
}

func TestHistogramSmallExactAndMerge(t *testing.T) {
	var a, b Histogram
	for v := range int64(100) {
		a.Record(v + 1) // 1..100
	}
	b.Record(1000)
	a.Merge(&b)
	if a.Count() != 101 || a.Max() != 1000 || a.Min() != 1 {
		t.Fatalf("count %d max %d min %d", a.Count(), a.Max(), a.Min())
	}
	if got := a.Quantile(0.5); got != 51 {
		t.Fatalf("median %d, want 51", got)
	}
	if got := a.Mean(); got < 59.9 || got > 60.0 {
		t.Fatalf("mean %f", got)
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10_000 {
				h.Record(int64(g*10_000 + i))
			}
		})
	}
	wg.Wait()
	if h.Count() != 80_000 || h.Max() != 79_999 || h.Min() != 0 {
		t.Fatalf("count %d max %d min %d", h.Count(), h.Max(), h.Min())
	}
}

func TestHistogramRecordNoAllocs(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(100, func() { h.Record(12345) }); n != 0 {
		t.Fatalf("Record allocates %.1f times", n)
	}
}
