// Generates the Prisma client that app.mjs uses, from the schema.prisma given
// on the command line, with no network and no native engine:
//
//   node generate.mjs <path/to/schema.prisma>
//
// The schema file is copied untouched into generated/schema/, next to a second
// file holding this folder's own generator block; `prisma generate` then reads
// that folder as a multi-file schema and runs only our generator. So
//   - the shipped generator block needs no `output` and is not run (its
//     provider must still be valid Prisma 7);
//   - the generator is the classic "prisma-client-js": it emits CommonJS
//     JavaScript that Node 20 imports as is (the newer "prisma-client"
//     generator emits only .ts files);
//   - @prisma/client is resolved from generated/schema/, so from this folder's
//     node_modules, wherever the original schema lives;
//   - the datasource block is used as shipped: Prisma 7 rejects `url` there.
//
// The Prisma CLI downloads the schema engine on every start unless
// PRISMA_SCHEMA_ENGINE_BINARY names an existing file; `generate` never runs it,
// so a stub that fails loudly is enough.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const GENERATOR = "clerk_sync_test_client";

if (process.argv.length !== 3) {
  console.error("usage: node generate.mjs <path/to/schema.prisma>");
  process.exit(2);
}
const source = resolve(process.argv[2]);
if (!existsSync(source)) {
  console.error(`generate.mjs: no such schema: ${source}`);
  process.exit(2);
}

const out = join(here, "generated");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "schema"), { recursive: true });
copyFileSync(source, join(out, "schema", "schema.prisma"));
writeFileSync(
  join(out, "schema", "zz_clerk_sync_test_generator.prisma"),
  `// Written by worker/tests/prisma/generate.mjs; the models come from ${source}\n` +
    `generator ${GENERATOR} {\n` +
    `  provider = "prisma-client-js"\n` +
    `  output   = "../client"\n` +
    `}\n`,
);

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) {
  const stub = join(out, "no-schema-engine");
  writeFileSync(
    stub,
    "#!/bin/sh\necho 'clerk-sync tests: the Prisma schema engine is not installed (only generate is supported)' >&2\nexit 1\n",
    { mode: 0o755 },
  );
  env.PRISMA_SCHEMA_ENGINE_BINARY = stub;
}
env.CHECKPOINT_DISABLE ??= "1"; // no update check / telemetry request
env.PRISMA_HIDE_UPDATE_MESSAGE ??= "1";

const cli = join(here, "node_modules", "prisma", "build", "index.js");
if (!existsSync(cli)) {
  console.error(`generate.mjs: ${cli} is missing; run \`npm ci\` in ${here} first`);
  process.exit(2);
}
const run = spawnSync(
  process.execPath,
  [cli, "generate", "--schema", join(out, "schema"), "--generator", GENERATOR, "--no-hints"],
  { cwd: here, env, stdio: "inherit" },
);
if (run.error) {
  console.error(`generate.mjs: ${run.error.message}`);
  process.exit(1);
}
process.exit(run.status ?? 1);
