package edge

import (
	"fmt"

	"github.com/cloudwego/netpoll"
)

// DefaultReadBufferSize is the input buffer netpoll gives a new connection. A held stream keeps the last
// buffer node of its input for as long as it is open, so this is memory per idle stream; a longer request
// head (up to MaxHeadBytes) is still read whole, into more nodes that are freed once it is parsed.
const DefaultReadBufferSize = 256

// ConfigureNetpoll sets netpoll's process-wide buffer sizes. Call it once, before the first connection is
// accepted (netpoll reads these globals when it creates a connection). Besides the initial size it
// lowers netpoll.LinkBufferCap, the floor netpoll rounds every buffer node up to (4 KiB by default), which
// would otherwise make every held stream keep 4 KiB whatever the configured size.
func ConfigureNetpoll(readBufferSize int) error {
	if readBufferSize <= 0 {
		readBufferSize = DefaultReadBufferSize
	}
	if readBufferSize > 1<<20 {
		return fmt.Errorf("edge: read buffer size %d: at most 1 MiB", readBufferSize)
	}
	netpoll.LinkBufferCap = readBufferSize
	return netpoll.Configure(netpoll.Config{BufferSize: readBufferSize})
}
