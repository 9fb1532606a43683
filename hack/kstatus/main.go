// Command kstatus reports how GitOps tools see Kubernetes objects saved as JSON files, using
// their own libraries rather than re-implementations:
//
//	kstatus compute FILE...           sigs.k8s.io/cli-utils kstatus status.Compute (what Flux
//	                                  `wait: true`, kpt and `kubectl wait` users rely on)
//	kstatus argo-lua SCRIPT FILE...   an Argo CD health script run the way Argo CD runs a
//	                                  resource.customizations health script: gopher-lua with
//	                                  only the package, base and table libraries, the object
//	                                  decoded into the global `obj`, a one-second deadline
//
// Each FILE gives one JSON line on stdout: {"file": ..., "status": ..., "message": ...}.
// tests/gitops_health.rs builds this program with hack/build-kstatus.sh and runs it on
// CheckoutLink objects whose status comes from the operator's own status builder.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type line struct {
	File    string `json:"file"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "compute":
		err = each(os.Args[2:], compute)
	case "argo-lua":
		if len(os.Args) < 4 {
			usage()
		}
		script, readErr := os.ReadFile(os.Args[2])
		if readErr != nil {
			fail(readErr)
		}
		err = each(os.Args[3:], func(u *unstructured.Unstructured) (string, string, error) {
			return argoHealth(string(script), u)
		})
	default:
		usage()
	}
	if err != nil {
		fail(err)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kstatus compute FILE... | kstatus argo-lua SCRIPT FILE...")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}

// each decodes every file the way client-go does (integers become int64) and prints one line.
func each(files []string, eval func(*unstructured.Unstructured) (string, string, error)) error {
	out := json.NewEncoder(os.Stdout)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		st, msg, err := eval(u)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := out.Encode(line{File: file, Status: st, Message: msg}); err != nil {
			return err
		}
	}
	return nil
}

func compute(u *unstructured.Unstructured) (string, string, error) {
	res, err := status.Compute(u)
	if err != nil {
		return "", "", err
	}
	return res.Status.String(), res.Message, nil
}

// argoHealth mirrors argo-cd util/lua (VM.runLua + ExecuteHealthLua) for a script configured in
// argocd-cm, where Argo CD leaves the other standard libraries closed (useOpenLibs false). The
// safe `os` subset Argo CD adds is left out: a script that needs it fails here.
func argoHealth(script string, u *unstructured.Unstructured) (string, string, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, u.Object))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	st, msg := table.RawGetString("status"), table.RawGetString("message")
	switch st.String() {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		return "", "", fmt.Errorf("the script returned the invalid health status %q", st.String())
	}
	if msg.Type() != lua.LTString && msg.Type() != lua.LTNil {
		return "", "", fmt.Errorf("the script returned a message of type %s", msg.Type())
	}
	if msg.Type() == lua.LTNil {
		return st.String(), "", nil
	}
	return st.String(), msg.String(), nil
}

// toLua converts a decoded object as argo-cd's decodeValue does.
func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(toLua(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), toLua(l, item))
		}
		return tbl
	}
	return lua.LNil
}
