// evaluate.js is the IAM evaluator of the test world's gate
// (internal/testenv/iamgate.go): one long-lived process per test binary that
// answers, for each request, what AWS's policy evaluation says, with
// @cloud-copilot/iam-simulate (pinned in package.json, installed by
// scripts/tools.sh into .tools/iamgate; NODE_PATH points at its
// node_modules).
//
// Protocol: JSON lines. Each line on stdin is
//   {"id": N, "policy": {...}, "action": "ec2:CreateTags",
//    "resource": "arn:aws:ec2:us-east-1:123456789012:elastic-ip/eipalloc-1",
//    "context": {"aws:TagKeys": ["eipclaim:holder"]}}
// and the answer on stdout, in any order, is
//   {"id": N, "decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied",
//    "resourceType": "elastic-ip", "ignored": ["key the action does not know"]}
// or {"id": N, "error": "..."} when the evaluator cannot evaluate the
// request (an unknown action, a resource of no type the action takes, an
// invalid policy). The gate fails those.
'use strict'

const readline = require('readline')
const { runSimulation } = require('@cloud-copilot/iam-simulate')

const account = '123456789012'

async function evaluate(req) {
  const sim = {
    request: {
      principal: `arn:aws:iam::${account}:role/eipclaim-test`,
      action: req.action,
      resource: { resource: req.resource, accountId: account },
      contextVariables: req.context || {}
    },
    identityPolicies: [{ name: 'policy', policy: req.policy }],
    serviceControlPolicies: [],
    resourceControlPolicies: []
  }
  const r = await runSimulation(sim, { simulationMode: 'Strict' })
  if (r.resultType === 'error') {
    return { error: JSON.stringify(r.errors) }
  }
  if (r.resultType === 'wildcard') {
    return { error: `resource ${req.resource} is a pattern, not one resource` }
  }
  return {
    decision: r.overallResult,
    resourceType: r.result.resourceType || '',
    ignored: r.result.ignoredContextKeys || []
  }
}

const rl = readline.createInterface({ input: process.stdin, terminal: false })
rl.on('line', (line) => {
  if (line.trim() === '') return
  let req
  try {
    req = JSON.parse(line)
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: -1, error: `bad request line: ${e.message}` }) + '\n')
    return
  }
  evaluate(req).then(
    (out) => process.stdout.write(JSON.stringify({ id: req.id, ...out }) + '\n'),
    (e) => process.stdout.write(JSON.stringify({ id: req.id, error: String(e && e.stack ? e.stack : e) }) + '\n')
  )
})
// The gate closes stdin when the test binary ends (so does the kernel when it
// dies): node then exits once the answers in flight are written.
