package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every error that means "the policy
// text is wrong", as opposed to an I/O failure.
var ErrInvalid = errors.New("invalid policy")

// ErrUnsupported is matched (errors.Is) by the errors of Set.Unsupported: a
// valid policy names what the enforcement backend cannot enforce. They
// match ErrInvalid too, since the policy set cannot be loaded as it is.
var ErrUnsupported = errors.New("not supported by the enforcement backend")

// Error is one problem in a policy document, located as precisely as the
// YAML parser allows.
type Error struct {
	File   string // file name as given to Load, or "<stdin>"
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Field  string // dotted path such as spec.rules[1].effect; empty for document-level problems
	Msg    string // what is wrong and what was expected
	// Backend names the enforcement backend that cannot enforce what Field
	// names (Set.Unsupported); empty for a problem of the policy itself.
	Backend string `json:",omitempty"`
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true, and errors.Is(err,
// ErrUnsupported) true for an error naming a Backend.
func (e *Error) Is(target error) bool {
	return target == ErrInvalid || target == ErrUnsupported && e.Backend != ""
}

// ErrorList is every problem found in a set of documents, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	switch len(l) {
	case 0:
		return "no errors"
	case 1:
		return l[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(l))
	for _, e := range l {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (l ErrorList) Is(target error) bool { return target == ErrInvalid && len(l) > 0 }

// Unwrap exposes each error to errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Errors returns the located errors inside err (an ErrorList or *Error,
// possibly wrapped), or nil if it holds none.
func Errors(err error) []*Error {
	var l ErrorList
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return nil
}
