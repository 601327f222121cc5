package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram is a fixed-size log-linear histogram of non-negative int64 values (nanoseconds here), in
// the manner of HdrHistogram with 7 significant bits: values below 128 are exact, larger ones fall in
// buckets 1/64 of their power of two wide, so a quantile is off by under 0.8% of the value. It holds
// every sample of a run in 22 KiB, never allocates on Record, and is safe for concurrent use (each
// counter is atomic), so one histogram can be shared by thousands of stream goroutines or owned by one
// poller and merged at the end.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64 // saturating is not needed: 2^64 ns is 584 years
	max    atomic.Int64
	min    atomic.Int64 // stored as value+1 so that zero means "no sample"
}

const (
	histSubBits = 7
	histHalf    = 1 << (histSubBits - 1) // 64 sub-buckets per power of two above 128
	histMaxExp  = 40                     // largest shift: values up to 2^47 ns (39 hours)
	histBuckets = (histMaxExp + 2) * histHalf
	histMaxVal  = int64(1)<<(histMaxExp+histSubBits) - 1
)

func histIndex(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > histMaxVal {
		v = histMaxVal
	}
	s := max(bits.Len64(uint64(v))-histSubBits, 0)
	return s<<(histSubBits-1) + int(v>>s)
}

// histBounds returns the lowest value of bucket i and the bucket's width.
func histBounds(i int) (lo, width int64) {
	if i < 2*histHalf {
		return int64(i), 1
	}
	s := i>>(histSubBits-1) - 1
	m := int64(i - s<<(histSubBits-1))
	return m << s, int64(1) << s
}

// Record adds one sample; negative values count as zero.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[histIndex(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(uint64(v))
	for cur := h.max.Load(); v > cur && !h.max.CompareAndSwap(cur, v); cur = h.max.Load() {
	}
	for cur := h.min.Load(); (cur == 0 || v+1 < cur) && !h.min.CompareAndSwap(cur, v+1); cur = h.min.Load() {
	}
}

// RecordDuration adds one duration sample.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds every sample of o to h. o must not be recorded into concurrently.
func (h *Histogram) Merge(o *Histogram) {
	for i := range o.counts {
		if n := o.counts[i].Load(); n > 0 {
			h.counts[i].Add(n)
		}
	}
	h.total.Add(o.total.Load())
	h.sum.Add(o.sum.Load())
	if om := o.max.Load(); om > 0 {
		for cur := h.max.Load(); om > cur && !h.max.CompareAndSwap(cur, om); cur = h.max.Load() {
		}
	}
	if om := o.min.Load(); om > 0 {
		for cur := h.min.Load(); (cur == 0 || om < cur) && !h.min.CompareAndSwap(cur, om); cur = h.min.Load() {
		}
	}
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max is the largest sample, exact; 0 without samples.
func (h *Histogram) Max() int64 { return h.max.Load() }

// Min is the smallest sample, exact; 0 without samples.
func (h *Histogram) Min() int64 { return max(h.min.Load()-1, 0) }

// Mean is the average sample; 0 without samples.
func (h *Histogram) Mean() float64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return float64(h.sum.Load()) / float64(n)
}

// Quantile returns the value at quantile q in [0, 1]: the middle of the bucket holding the sample of
// rank ceil(q*count), clamped to the exact minimum and maximum (and the exact maximum for the top rank). It returns 0 without samples.
func (h *Histogram) Quantile(q float64) int64 {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	if rank == n {
		return h.Max()
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, w := histBounds(i)
			v := lo + (w-1)/2
			return min(max(v, h.Min()), h.Max())
		}
	}
	return h.Max()
}
