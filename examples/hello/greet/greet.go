// Package greet formats the example's greeting.
package greet

import "fmt"

// Line returns the greeting for name, tagged with the build's version.
func Line(greeting, name, version string) string {
	return fmt.Sprintf("%s, %s! (hello %s)", greeting, name, version)
}
