// Package charttest holds the tests of the Helm chart in deploy/helm/sseedge: helm lint and helm
// template with the default values and every values file of the chart's ci/ directory, every rendered
// object decoded strictly into its Kubernetes API type, and the Deployment checked against the edge
// binary itself (its flags, as `edge -h` prints them, and a process run with the rendered environment).
//
// helm is the version pinned by this module's go.mod (a tool requirement), built by `go tool -n helm`;
// the edge binary is built from the parent module. Run with `cd deploy && go test ./...` (`make chart`).
package charttest
