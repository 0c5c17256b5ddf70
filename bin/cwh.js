#!/usr/bin/env node
// Entry point of the `cwh` CLI. The TypeScript sources are compiled to dist/ by `npm run build`
// (which `npm start` and `npm test` run first).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/host/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('cwh: not built yet; run `npm run build` in the repository first\n');
  process.exit(2);
}
const { runCli } = await import(main);
process.exitCode = await runCli(process.argv);
