// Command protogen regenerates the Go code of lifeline's plugin protocol
// (sdk/proto) from its .proto files, or checks that the committed code is
// what the .proto files give (-check).
//
// It needs nothing but Go and the module proxy: the .proto files are parsed
// by bufbuild/protocompile, a pure-Go compiler, and the code is written by
// protoc-gen-go and protoc-gen-go-grpc at the versions this module's go.mod
// pins, which it builds and runs as protoc would, one CodeGeneratorRequest on
// standard input each. Because no protoc binary is involved, the output does
// not depend on which protoc a machine has installed: the generated header
// says "protoc (unknown)" on every machine.
//
//	go -C sdk/internal/protogen run . -dir "$PWD/sdk/proto"          # regenerate
//	go -C sdk/internal/protogen run . -dir "$PWD/sdk/proto" -check   # fail if stale
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"
)

// generators are the protoc plugins run on every file, with their options.
var generators = []struct {
	pkg   string
	param string
}{
	{"google.golang.org/protobuf/cmd/protoc-gen-go", "paths=source_relative"},
	{"google.golang.org/grpc/cmd/protoc-gen-go-grpc", "paths=source_relative,require_unimplemented_servers=false"},
}

func main() {
	dir := flag.String("dir", "", "directory holding the .proto files; the generated code is written beside them (required)")
	check := flag.Bool("check", false, "write nothing; exit 1 if the generated code on disk differs from what would be generated")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "protogen: -dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *check); err != nil {
		fmt.Fprintln(os.Stderr, "protogen:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	protos, err := filepath.Glob(filepath.Join(dir, "*.proto"))
	if err != nil {
		return err
	}
	if len(protos) == 0 {
		return fmt.Errorf("no .proto files in %s", dir)
	}
	names := make([]string, len(protos))
	for i, p := range protos {
		names[i] = filepath.Base(p)
	}
	sort.Strings(names)

	req, err := request(dir, names)
	if err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "protogen")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)

	out := map[string][]byte{}
	for _, g := range generators {
		files, err := generate(bin, g.pkg, g.param, req)
		if err != nil {
			return err
		}
		for name, content := range files {
			out[name] = content
		}
	}
	if check {
		return compare(dir, out)
	}
	for name, content := range out {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// request compiles the .proto files and builds the CodeGeneratorRequest
// protoc would send: every file and its imports, dependencies first.
func request(dir string, names []string) (*pluginpb.CodeGeneratorRequest, error) {
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{dir}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := c.Compile(context.Background(), names...)
	if err != nil {
		return nil, fmt.Errorf("compiling %s: %w", strings.Join(names, ", "), err)
	}
	req := &pluginpb.CodeGeneratorRequest{FileToGenerate: names}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(fd))
	}
	for _, f := range files {
		add(f)
	}
	return req, nil
}

// generate builds the generator in pkg and runs it on req, returning the
// files it produced by name.
func generate(bin, pkg, param string, req *pluginpb.CodeGeneratorRequest) (map[string][]byte, error) {
	exe := filepath.Join(bin, filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", exe, pkg)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building %s: %w", pkg, err)
	}
	r := proto.Clone(req).(*pluginpb.CodeGeneratorRequest)
	r.Parameter = proto.String(param)
	in, err := proto.Marshal(r)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("running %s: %w", filepath.Base(pkg), err)
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("reading %s's response: %w", filepath.Base(pkg), err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("%s: %s", filepath.Base(pkg), resp.GetError())
	}
	out := map[string][]byte{}
	for _, f := range resp.File {
		if f.GetInsertionPoint() != "" {
			return nil, errors.New("insertion points are not supported")
		}
		out[f.GetName()] = []byte(f.GetContent())
	}
	return out, nil
}

// compare reports every generated file that is missing on disk or differs
// from it.
func compare(dir string, want map[string][]byte) error {
	var stale []string
	for name, content := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, content) {
			stale = append(stale, name)
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		return fmt.Errorf("generated code in %s is stale (%s): run `make generate` and commit the result", dir, strings.Join(stale, ", "))
	}
	return nil
}
