package grip

import "github.com/sseedge/sseedge/fanout"

// Limits bound what one function answer or one publish may ask of the edge. A zero field takes its
// default (DefaultLimits).
type Limits struct {
	// MaxChannels bounds the Grip-Channel entries of one answer: a held stream reads that many topics
	// (the edge's MAX_TOPICS_PER_STREAM, 64 by default).
	MaxChannels int
	// MaxHeaderBytes bounds the value of each Grip-* header (all of its lines together).
	MaxHeaderBytes int
	// MaxBodyBytes bounds the body of an answer: the initial SSE text of a held stream, or a passed
	// through response.
	MaxBodyBytes int
	// MaxEvents bounds the events of one SSE text: an initial body, or one item's content.
	MaxEvents int
	// MaxEventBytes bounds one event's frame as the edge writes it (fanout.FrameLen).
	MaxEventBytes int
	// MaxItems bounds the items of one publish body.
	MaxItems int
	// MaxPublishBytes bounds a publish body.
	MaxPublishBytes int
	// MaxKeepAliveBytes bounds the decoded Grip-Keep-Alive content.
	MaxKeepAliveBytes int
}

// DefaultLimits are the limits a zero Limits stands for.
func DefaultLimits() Limits {
	return Limits{
		MaxChannels:       64,
		MaxHeaderBytes:    8 << 10,
		MaxBodyBytes:      1 << 20,
		MaxEvents:         1000,
		MaxEventBytes:     fanout.DefaultMaxFrameBytes,
		MaxItems:          1000,
		MaxPublishBytes:   4 << 20,
		MaxKeepAliveBytes: 1 << 10,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, d *int }{
		{&l.MaxChannels, &d.MaxChannels},
		{&l.MaxHeaderBytes, &d.MaxHeaderBytes},
		{&l.MaxBodyBytes, &d.MaxBodyBytes},
		{&l.MaxEvents, &d.MaxEvents},
		{&l.MaxEventBytes, &d.MaxEventBytes},
		{&l.MaxItems, &d.MaxItems},
		{&l.MaxPublishBytes, &d.MaxPublishBytes},
		{&l.MaxKeepAliveBytes, &d.MaxKeepAliveBytes},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	return l
}
