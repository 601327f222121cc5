package edge

import (
	"testing"
	"unsafe"
)

// TestStreamSizeClass keeps an idle stream's own struct in the 176-byte size class that
// docs/performance.md's idle cost counts: a field added to every stream costs 16 bytes a stream the
// moment the struct crosses it. What few streams need goes in streamExtra or multi, behind one pointer;
// multi (multi-topic streams) keeps its 176 bytes too, with GRIP keep-alives behind a pointer of its own.
func TestStreamSizeClass(t *testing.T) {
	st, m, ka := unsafe.Sizeof(stream{}), unsafe.Sizeof(multi{}), unsafe.Sizeof(keepAlive{})
	t.Logf("stream %d bytes, multi %d, keepAlive %d (GRIP holds with Grip-Keep-Alive only)", st, m, ka)
	if st > 176 {
		t.Errorf("stream is %d bytes; want at most 176 (the size class of the documented idle cost)", st)
	}
	if m > 176 {
		t.Errorf("multi is %d bytes; want at most 176", m)
	}
}
