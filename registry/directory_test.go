package registry_test

import (
	"testing"
	"time"

	"github.com/sseedge/sseedge/registry"
	"github.com/sseedge/sseedge/registry/registrytest"
)

func TestMemoryDirectory(t *testing.T) {
	registrytest.RunDirectory(t, func(_ *testing.T, ttl time.Duration) registry.Directory {
		return registry.NewMemoryDirectory(ttl)
	})
}
