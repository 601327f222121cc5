package edge

import (
	"testing"
	"unsafe"
)

// TestStreamSizeClass keeps an idle stream's own struct in the 176-byte size class that
// docs/performance.md's idle cost counts: a field added to every stream costs 16 bytes a stream the
// moment the struct crosses it. What few streams need goes in streamExtra or multi, behind one pointer.
func TestStreamSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(stream{}); n > 176 {
		t.Errorf("stream is %d bytes; want at most 176 (the size class of the documented idle cost)", n)
	}
}
