// Package proto is lifeline's plugin wire protocol: the messages and gRPC
// services of plugin.proto and the Go code generated from them. Plugin
// authors do not use it directly; package sdk wraps it, and the host in
// core/pluginhost speaks it. `make generate` regenerates plugin.pb.go and
// plugin_grpc.pb.go, and `make test` fails when they are stale.
package proto
