// Command hello is ko-annotate's example: it prints a greeting read from its kodata
// directory ($KO_DATA_PATH/greeting.txt) or, when run outside an image, from the default
// embedded in the binary.
package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"example.com/greet"
)

// version is set with -ldflags "-X main.version=…".
var version = "dev"

//go:embed default-greeting.txt
var defaultGreeting string

func main() {
	greeting := strings.TrimSpace(defaultGreeting)
	if dir := os.Getenv("KO_DATA_PATH"); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "greeting.txt")); err == nil {
			greeting = strings.TrimSpace(string(b))
		}
	}
	name := "world"
	if len(os.Args) > 1 {
		name = os.Args[1]
	}
	fmt.Println(greet.Line(greeting, name, version))
	fmt.Printf("built for %s/%s\n", runtime.GOOS, runtime.GOARCH)
}
