//go:build tools

// Package tools pins the Jaeger v2 command built from this module.
package tools

import _ "github.com/jaegertracing/jaeger/cmd/jaeger"
