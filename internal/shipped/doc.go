// Package shipped holds the tests of the files eipclaim ships: init/,
// windows/, examples/, docs/iam-policy.json (and packaging/), so that they
// stay valid and in step with the code: the systemd units pass
// systemd-analyze verify, the Windows task XML is well-formed and runs real
// eipclaim commands, every example decodes, the IAM policy names exactly
// the actions the code calls, docs/development.md's layout table says what
// each package imports, and every example of README.md and docs/ is
// decoded, parsed or run.
package shipped
