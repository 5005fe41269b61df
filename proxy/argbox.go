package proxy

import "unsafe"

// argBoxes turns a request's arguments into the []any the client's API
// takes, without a heap allocation per argument.
//
// Storing a []byte in an interface copies its slice header to the heap:
// for a proxy that forwards every argument it reads, that was two or three
// allocations per command, the largest share of its garbage. Here each
// argument's header is kept in a slice the session reuses, and the
// interface value is made to point at it: exactly what the conversion
// would build, minus the copy. It relies on the gc toolchain's interface
// layout (a type word, then a pointer to the value for types that are not
// pointer-shaped, as []byte is not), which argbox_test.go checks.
//
// The values returned stay valid until the next call, which rewrites the
// headers they point at; the client copies arguments while encoding, so no
// caller keeps them longer.
type argBoxes struct {
	hdrs [][]byte
	anys []any
}

// eface is the gc layout of an interface{} value.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// bytesType is the type word of a []byte in an interface.
var bytesType = func() unsafe.Pointer {
	var a any = []byte(nil)
	return (*eface)(unsafe.Pointer(&a)).typ
}()

func (b *argBoxes) box(args [][]byte) []any {
	if cap(b.hdrs) < len(args) {
		// A new array: values boxed earlier keep the old one alive.
		b.hdrs = make([][]byte, len(args), 2*len(args))
		b.anys = make([]any, len(args), 2*len(args))
	}
	hdrs, anys := b.hdrs[:len(args)], b.anys[:len(args)]
	for i, a := range args {
		hdrs[i] = a
		*(*eface)(unsafe.Pointer(&anys[i])) = eface{typ: bytesType, data: unsafe.Pointer(&hdrs[i])}
	}
	return anys
}
