// This module only builds the generator behind `make generate` and the
// staleness check in `make test`: its dependencies never reach lifeline's
// own module graph.
module github.com/lifeline-bot/lifeline/sdk/internal/protogen

go 1.26.0

require (
	github.com/bufbuild/protocompile v0.14.1
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.3.0
	google.golang.org/protobuf v1.36.12
)

require golang.org/x/sync v0.8.0 // indirect
