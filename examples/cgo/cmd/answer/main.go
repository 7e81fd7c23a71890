// Command answer prints a number its C code computes: an example of cgo built for several
// platforms by ko-annotate (docs/cgo.md), with a C cross compiler per platform.
package main

/*
#include <stdio.h>

// The C library's snprintf, so that the binary needs libc at run time, as most cgo does.
static int answer(char *buf, int n) {
	return snprintf(buf, n, "%d", 6 * 7);
}
*/
import "C"

import (
	"fmt"
	"runtime"
)

func main() {
	var buf [16]C.char
	n := C.answer(&buf[0], C.int(len(buf)))
	fmt.Printf("C says %s (%d bytes) on %s/%s\n", C.GoString(&buf[0]), int(n), runtime.GOOS, runtime.GOARCH)
}
