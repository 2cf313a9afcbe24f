// Package layers holds only a test: it keeps the module's import graph
// pointing down its layers (see layers_test.go).
package layers
