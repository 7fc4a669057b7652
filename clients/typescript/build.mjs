// `npm run build` (and `npm pack`, through prepack): dist/esm for `import`, dist/cjs for
// `require`, both compiled by tsc with their declarations. tsc emits no declarations for
// a declaration file, so the generated src/schema.d.ts, which index.d.ts imports, is
// copied beside each; a package.json in each folder tells Node and TypeScript its format.
import { execFileSync } from "node:child_process";
import { copyFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
rmSync("dist", { recursive: true, force: true });
for (const [folder, type] of [["esm", "module"], ["cjs", "commonjs"]]) {
  execFileSync(process.execPath, [tsc, "-p", `tsconfig.${folder}.json`], { stdio: "inherit" });
  copyFileSync("src/schema.d.ts", `dist/${folder}/schema.d.ts`);
  writeFileSync(`dist/${folder}/package.json`, `${JSON.stringify({ type })}\n`);
}
