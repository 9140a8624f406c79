package telemetry_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/telemetry"
)

// The address `lifeline run` serves by default reaches this machine only
// (TestListen covers the refusal of other addresses without a token).
func TestServedOnLoopbackByDefault(t *testing.T) {
	host, _, err := net.SplitHostPort(telemetry.DefaultAddr)
	if err != nil || !telemetry.IsLoopback(host) {
		t.Fatalf("DefaultAddr %q is not loopback", telemetry.DefaultAddr)
	}
	ln, err := telemetry.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Fatalf("listening on %v", ip)
	}
}

// With a token set, no request gets through without it, whatever way the
// token is offered (the query string, another scheme, a wrong case, extra
// text); the reload endpoint needs it even when the probes are open.
func TestBearerTokenHasOneWayIn(t *testing.T) {
	const tok = "operator-token-0123456789"
	src := &stub{status: healthy()}
	tel := newTelemetry(t, src, clock.NewFake(t0))
	for _, open := range []bool{false, true} {
		srv := serve(t, tel.Handler(telemetry.HandlerOptions{BearerToken: tok, OpenProbes: open}))
		tests := []struct {
			method, path, header string
			want                 int
		}{
			{"GET", "/metrics?token=" + tok, "", 401},
			{"GET", "/metrics?access_token=" + tok, "", 401},
			{"GET", "/metrics", "Basic " + tok, 401},
			{"GET", "/metrics", "Token " + tok, 401},
			{"GET", "/metrics", tok, 401},
			{"GET", "/metrics", "Bearer " + strings.ToUpper(tok), 401},
			{"GET", "/metrics", "Bearer " + tok + "x", 401},
			{"GET", "/metrics", "Bearer " + tok[:len(tok)-1], 401},
			{"GET", "/metrics", "Bearer ", 401},
			{"GET", "/events", "", 401},
			{"GET", "/debug/lifeline", "Bearer wrong", 401},
			{"POST", "/-/reload", "", 401},
			{"POST", "/-/reload?token=" + tok, "", 401},
			{"POST", "/-/reload", "Bearer wrong", 401},
			{"POST", "/-/reload", "Bearer " + tok, 200},
			{"GET", "/metrics", "Bearer " + tok, 200},
		}
		for _, tt := range tests {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("open probes %t: %s %s with %q: %d, want %d", open, tt.method, tt.path, tt.header, resp.StatusCode, tt.want)
			}
		}
	}
	if src.reloads != 2 {
		t.Fatalf("%d reloads ran, want the 2 with the token", src.reloads)
	}
}

// The token is compared in constant time: the package never compares a
// token (or anything named like one) with ==, !=, strings.EqualFold,
// bytes.Equal or hmac.Equal on the token itself, and it does call
// subtle.ConstantTimeCompare.
func TestTokenComparedInConstantTime(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	constantTime := false
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		tokenish := func(e ast.Expr) bool {
			var found bool
			ast.Inspect(e, func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok && strings.Contains(strings.ToLower(id.Name), "token") {
					found = true
				}
				return !found
			})
			return found
		}
		empty := func(e ast.Expr) bool {
			if l, ok := e.(*ast.BasicLit); ok && l.Value == `""` {
				return true
			}
			id, ok := e.(*ast.Ident)
			return ok && id.Name == "nil"
		}
		isConstantTime := func(e ast.Expr) bool {
			c, ok := e.(*ast.CallExpr)
			if !ok {
				return false
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			return ok && sel.Sel.Name == "ConstantTimeCompare"
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if isConstantTime(n.X) || isConstantTime(n.Y) {
					return true // its result compared with 1
				}
				if (n.Op == token.EQL || n.Op == token.NEQ) && (tokenish(n.X) || tokenish(n.Y)) && !empty(n.X) && !empty(n.Y) {
					t.Errorf("%s: a token compared with %s", fset.Position(n.Pos()), n.Op)
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, _ := sel.X.(*ast.Ident)
				if pkg == nil {
					return true
				}
				switch pkg.Name + "." + sel.Sel.Name {
				case "subtle.ConstantTimeCompare":
					constantTime = true
				case "strings.EqualFold", "bytes.Equal", "hmac.Equal", "strings.Compare", "bytes.Compare":
					for _, a := range n.Args {
						if tokenish(a) {
							t.Errorf("%s: a token compared with %s.%s", fset.Position(n.Pos()), pkg.Name, sel.Sel.Name)
						}
					}
				}
			}
			return true
		})
	}
	if !constantTime {
		t.Fatal("no subtle.ConstantTimeCompare in the package")
	}
}

// Without a bearer token, a web page the operator visits cannot make the
// browser POST /-/reload (a cross-site form POST needs no preflight);
// same-origin pages and non-browser clients (curl sends neither header)
// still can.
func TestReloadRefusesCrossOriginBrowsers(t *testing.T) {
	src := &stub{status: healthy()}
	tel := newTelemetry(t, src, clock.NewFake(t0))
	srv := serve(t, tel.Handler(telemetry.HandlerOptions{}))
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"curl: no browser headers", nil, 200},
		{"same-origin fetch", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"typed in the address bar", map[string]string{"Sec-Fetch-Site": "none"}, 200},
		{"same origin, older browser", map[string]string{"Origin": "http://" + host}, 200},
		{"cross-site form", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"another localhost port", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"foreign Origin, older browser", map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-site with a same-host Origin", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://" + host}, 403},
	}
	want := 0
	for _, tt := range tests {
		req, err := http.NewRequest("POST", srv.URL+"/-/reload", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tt.header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		if tt.want == 200 {
			want++
		}
	}
	if src.reloads != want {
		t.Fatalf("%d reloads ran, want %d (only the allowed requests)", src.reloads, want)
	}
}
