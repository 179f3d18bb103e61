// Command porcupine-driver checks JSON-lines histories (docs/history-format.md) with Porcupine,
// for side-by-side comparisons with lincheck (tools/porcupine-driver/compare.py and
// `cargo bench -p lincheck` with PORCUPINE_DRIVER set).
//
//	porcupine-driver FILE...
//
// prints one line per file: the file, Porcupine's verdict (linearizable, not-linearizable,
// unknown) and the wall time to read and check it in milliseconds, so the time covers what
// lincheck's does (lincheck's example `lincheck` reads and checks too).
//
// The register model is the harness's, as lincheck checks it: a key is absent (nil) until
// written; `ok` read of v needs the state to be v; write v sets v; cas [a, b] ok needs a and
// sets b. `fail` operations did not happen and are left out, as are reads with an unknown
// outcome (they observed nothing). A `write` or `cas` with an `info` completion, or none, gets
// a return time after everything else, and its step accepts any state (a cas then sets b only
// if the state is a): in Porcupine, as in lincheck, an indefinite operation that never took
// effect is one that took effect at the end. Each key is its own partition.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

type event struct {
	Process json.RawMessage `json:"process"`
	Type    string          `json:"type"`
	F       string          `json:"f"`
	Key     *string         `json:"key"`
	Value   json.RawMessage `json:"value"`
}

const (
	fRead = iota
	fWrite
	fCas
)

type input struct {
	key  int
	f    int
	a, b int
}

type output struct {
	unknown bool
	value   int
}

// interner numbers the distinct values, nil (absent) being 0.
type interner map[string]int

func (in interner) id(raw json.RawMessage) (int, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return 0, err
	}
	s := buf.String()
	if s == "" || s == "null" {
		return 0, nil
	}
	if v, ok := in[s]; ok {
		return v, nil
	}
	v := len(in) + 1
	in[s] = v
	return v, nil
}

type open struct {
	in   input
	call int64
}

func read(path string) ([]porcupine.Operation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	values := interner{}
	keys := map[string]int{}
	pending := map[string]open{}
	var ops []porcupine.Operation
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var line int64
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		proc := string(e.Process)
		if proc == `"nemesis"` || e.Key == nil {
			continue
		}
		if e.Type == "invoke" {
			k, ok := keys[*e.Key]
			if !ok {
				k = len(keys)
				keys[*e.Key] = k
			}
			in := input{key: k}
			switch e.F {
			case "read":
				in.f = fRead
			case "write":
				in.f = fWrite
				if in.a, err = values.id(e.Value); err != nil {
					return nil, fmt.Errorf("%s:%d: %v", path, line, err)
				}
			case "cas":
				in.f = fCas
				var ab []json.RawMessage
				if err := json.Unmarshal(e.Value, &ab); err != nil || len(ab) != 2 {
					return nil, fmt.Errorf("%s:%d: cas value is not [from, to]", path, line)
				}
				if in.a, err = values.id(ab[0]); err != nil {
					return nil, err
				}
				if in.b, err = values.id(ab[1]); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("%s:%d: unsupported f %q", path, line, e.F)
			}
			pending[proc] = open{in: in, call: line}
			continue
		}
		o, ok := pending[proc]
		if !ok {
			return nil, fmt.Errorf("%s:%d: completion without invocation", path, line)
		}
		delete(pending, proc)
		switch e.Type {
		case "ok":
			out := output{}
			if o.in.f == fRead {
				if out.value, err = values.id(e.Value); err != nil {
					return nil, err
				}
			}
			ops = append(ops, porcupine.Operation{ClientId: 0, Input: o.in, Call: o.call, Output: out, Return: line})
		case "fail":
		case "info":
			if o.in.f != fRead {
				ops = append(ops, porcupine.Operation{Input: o.in, Call: o.call, Output: output{unknown: true}, Return: math.MaxInt64})
			}
		default:
			return nil, fmt.Errorf("%s:%d: unknown type %q", path, line, e.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Operations with no completion are indefinite too.
	for _, o := range pending {
		if o.in.f != fRead {
			ops = append(ops, porcupine.Operation{Input: o.in, Call: o.call, Output: output{unknown: true}, Return: math.MaxInt64})
		}
	}
	return ops, nil
}

var register = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		var order []int
		for _, op := range history {
			k := op.Input.(input).key
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		parts := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init: func() interface{} { return 0 },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		s := state.(int)
		i := in.(input)
		o := out.(output)
		switch i.f {
		case fRead:
			return o.unknown || s == o.value, s
		case fWrite:
			return true, i.a
		default:
			if s == i.a {
				return true, i.b
			}
			return o.unknown, s
		}
	},
	Equal: func(a, b interface{}) bool { return a.(int) == b.(int) },
	Hash:  func(s interface{}) uint64 { return uint64(s.(int)) * 0x9e3779b97f4a7c15 },
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: porcupine-driver FILE...")
		os.Exit(254)
	}
	for _, path := range os.Args[1:] {
		t := time.Now()
		ops, err := read(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(254)
		}
		verdict := "unknown"
		switch porcupine.CheckOperationsTimeout(register, ops, 0) {
		case porcupine.Ok:
			verdict = "linearizable"
		case porcupine.Illegal:
			verdict = "not-linearizable"
		}
		fmt.Printf("%s\t%s\t%.1f ms\n", path, verdict, float64(time.Since(t).Microseconds())/1e3)
	}
}
