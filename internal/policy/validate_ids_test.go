package policy

import "testing"

// Two rules for the same operations that differ only by their users are
// different subjects: neither shadows the other (ids are resolved before
// rules are compared).
func TestRulesDifferingByUserAreNotDuplicates(t *testing.T) {
	const text = `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: by-user}
spec:
  files: {paths: ["/srv/x/**"]}
  rules:
    - name: alice-may-not
      operations: [open, read]
      subjects: {users: ["1000"]}
      effect: deny
    - name: bob-may
      operations: [open]
      subjects: {users: ["2000"]}
      effect: allow
`
	if _, err := Load([]Source{{Name: "p.yaml", Data: []byte(text)}}, LoadOptions{}); err != nil {
		t.Fatalf("rules for different users were rejected: %v", err)
	}
}
