// Compile contracts/src/*.sol into contracts/artifacts/<Name>.json ({abi, bytecode}).
// Runs offline with the npm `solc` compiler: `npm run build:contracts`.
// An optional argument names another output folder (the tests compare against it).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const solc = require('solc')
const here = dirname(fileURLToPath(import.meta.url))
const sourceDir = join(here, 'src')
const outputDir = process.argv[2] || join(here, 'artifacts')

const sources = Object.fromEntries(
  readdirSync(sourceDir)
    .filter((name) => name.endsWith('.sol'))
    .sort()
    .map((name) => [name, { content: readFileSync(join(sourceDir, name), 'utf8') }])
)

const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } }
  }
}

function findImports (path) {
  try {
    return { contents: readFileSync(require.resolve(path), 'utf8') }
  } catch {
    return { error: `not found: ${path}` }
  }
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }))
const errors = (output.errors || []).filter((e) => e.severity === 'error')
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage)
  process.exit(1)
}

for (const file of Object.keys(sources)) {
  for (const [name, contract] of Object.entries(output.contracts[file])) {
    const artifact = {
      contractName: name,
      compiler: `solc ${solc.version()}`,
      abi: contract.abi,
      bytecode: `0x${contract.evm.bytecode.object}`
    }
    writeFileSync(join(outputDir, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n')
    console.log(join(outputDir, `${name}.json`))
  }
}
