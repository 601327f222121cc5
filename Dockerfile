# syntax=docker/dockerfile:1
#
# sseedge images. Two targets share one build stage:
#   edge      (the default, last stage): the edge binary from ./cmd/edge
#   function  the sample function from ./examples/functions, used by docker-compose.yml
#
#   docker build -t sseedge .                                  # the edge
#   docker build --target function -t sseedge-function .       # the sample function
#
# Binaries are static (CGO_ENABLED=0: netpoll, fasthttp and rueidis are pure Go) and run on
# distroless/static as the unprivileged "nonroot" user (uid 65532): no shell, no package manager,
# nothing to patch but the binary.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0
# Modules first, so editing the source does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# Cross-compile for the requested platform instead of emulating it.
ARG TARGETOS
ARG TARGETARCH

FROM build AS build-edge
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/edge ./cmd/edge

FROM build AS build-function
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/function ./examples/functions

FROM gcr.io/distroless/static-debian12:nonroot AS function
COPY --from=build-function /out/function /function
USER nonroot:nonroot
EXPOSE 9000
ENTRYPOINT ["/function"]
# The sample function listens on loopback unless told otherwise; in a container it must not.
CMD ["-addr", "0.0.0.0:9000"]

FROM gcr.io/distroless/static-debian12:nonroot AS edge
COPY --from=build-edge /out/edge /edge
USER nonroot:nonroot
# PORT (default 8080) serves streams, the API and /metrics. HOST defaults to loopback unless
# ADMIN_TOKEN or TOKEN_SECRET is set, so a container normally runs with HOST=0.0.0.0 and secrets.
EXPOSE 8080
ENTRYPOINT ["/edge"]
