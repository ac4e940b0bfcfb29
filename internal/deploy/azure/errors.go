package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// Conditions callers branch on.
var (
	// ErrUnsupported marks a target drmfilter cannot deploy to: a Windows
	// machine, or a scale set whose upgrade policy is not Manual.
	ErrUnsupported = errors.New("unsupported target")
	// ErrNotFound marks a VM or scale set that does not exist.
	ErrNotFound = errors.New("not found")
)

// targetError says what is wrong with a VM or scale set; it matches its
// kind (ErrUnsupported, ErrNotFound) and unwraps to Azure's error, if any.
type targetError struct {
	kind error
	msg  string
	err  error
}

func (e *targetError) Error() string        { return e.msg }
func (e *targetError) Is(target error) bool { return e.kind != nil && target == e.kind }
func (e *targetError) Unwrap() error        { return e.err }

// azureError wraps an Azure error under a short context prefix, printing
// describe's one line instead of azcore's multi-line dump.
func azureError(prefix string, err error) error {
	return &targetError{msg: prefix + ": " + describe(err), err: err}
}

// RoleHint is the advice given with a permission error.
const RoleHint = "the identity needs the Virtual Machine Contributor role on the VM, scale set or resource group"

// isNotFound reports whether err is Azure's 404.
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// describe turns an error from Azure into one line: the provider's code and
// message, with advice for throttling and permissions. URLs in it are
// redacted.
func describe(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return RedactText(oneLine(err.Error()))
	}
	code, msg := providerError(re)
	s := code
	if s == "" {
		s = fmt.Sprintf("HTTP %d", re.StatusCode)
	}
	if msg != "" {
		s += ": " + msg
	}
	switch {
	case re.StatusCode == http.StatusTooManyRequests:
		s = "throttled by Azure, still after retries (" + s + ")"
	case re.StatusCode == http.StatusForbidden || code == "AuthorizationFailed":
		s = "permission denied (" + s + "); " + RoleHint
	}
	return RedactText(oneLine(s))
}

// errorCode is Azure's error code for err, or "error".
func errorCode(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		if code, _ := providerError(re); code != "" {
			return code
		}
	}
	return "error"
}

// providerError reads the code and message Azure put in the response body
// ({"error":{"code","message"}}), falling back on the x-ms-error-code
// header azcore already parsed.
func providerError(re *azcore.ResponseError) (code, msg string) {
	code = re.ErrorCode
	if re.RawResponse == nil {
		return code, ""
	}
	body, err := runtime.Payload(re.RawResponse)
	if err != nil || len(body) == 0 {
		return code, ""
	}
	var doc struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &doc) != nil || doc.Error == nil {
		return code, ""
	}
	if doc.Error.Code != "" {
		code = doc.Error.Code
	}
	return code, doc.Error.Message
}

// oneLine folds whitespace so that a message fits a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
