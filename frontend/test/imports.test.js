// Structure rules of the frontend, read from the sources: page modules (src/pages/) never import one another,
// shared modules never import a page, only the entry (src/main.js) does, and only the JSON client calls fetch.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "src");
const ENTRY = "main.js";
const CLIENT = "api.js";

/** Every .js module under src, as {"pages/probes.js": source}. */
function readModules(root = SRC) {
  const modules = {};
  for (const entry of readdirSync(root, { recursive: true })) {
    if (entry.endsWith(".js")) modules[entry.split("\\").join("/")] = readFileSync(join(root, entry), "utf8");
  }
  return modules;
}

const IMPORT = /(?:^|[;\s])(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']|(?:^|[;\s])import\s*["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;

/** Relative module paths a source imports (static, re-exports, side-effect and dynamic imports), resolved
 * against the importing module's folder. */
export function importsOf(path, source) {
  const found = [];
  for (const match of source.matchAll(IMPORT)) {
    const target = match[1] || match[2] || match[3];
    if (target.startsWith(".")) found.push(normalize(join(dirname(path), target)).split("\\").join("/"));
  }
  return found;
}

const isPage = (path) => path.startsWith("pages/");

/** Broken rules, each as a sentence naming the modules. */
export function violations(modules) {
  const graph = Object.fromEntries(Object.entries(modules).map(([path, source]) => [path, importsOf(path, source)]));
  const problems = [];
  for (const [path, targets] of Object.entries(graph)) {
    for (const target of targets) {
      if (!(target in graph)) problems.push(`${path} imports ${target}, which does not exist`);
      else if (isPage(target) && path !== ENTRY) problems.push(`${path} imports the page module ${target}`);
    }
  }
  for (const page of Object.keys(graph).filter(isPage)) {
    const seen = new Set();
    const stack = [...graph[page]];
    while (stack.length) {
      const next = stack.pop();
      if (seen.has(next) || !(next in graph)) continue;
      seen.add(next);
      if (isPage(next) && next !== page) problems.push(`${page} reaches the page module ${next}`);
      stack.push(...graph[next]);
    }
    if (!(graph[ENTRY] || []).includes(page)) problems.push(`${ENTRY} does not import the page module ${page}`);
  }
  for (const [path, source] of Object.entries(modules)) {
    if (path !== CLIENT && /\bfetch\s*\(/.test(source)) problems.push(`${path} calls fetch; use the client in ${CLIENT}`);
  }
  return problems;
}

test("the frontend keeps its structure: pages apart, one JSON client", () => {
  const modules = readModules();
  assert.ok(Object.keys(modules).filter(isPage).length >= 5, `no page modules found under ${SRC}`);
  assert.deepEqual(violations(modules), []);
});

test("the import reader sees every form of import", () => {
  const source = [
    'import { a } from "./a.js";',
    "import b, {\n  c,\n} from '../b.js';",
    'export { d } from "./d.js";',
    'import "./side.js";',
    'const e = await import("./pages/e.js");',
    'import { f } from "node:fs";',
    '// "import" in a comment names nothing from "./x.js"',
  ].join("\n");
  assert.deepEqual(importsOf("pages/p.js", source), ["pages/a.js", "b.js", "pages/d.js", "pages/side.js", "pages/pages/e.js"]);
});

test("the rules catch a page importing a page, directly or through a shared module, and a stray fetch", () => {
  const modules = {
    "main.js": 'import "./pages/a.js";\nimport "./pages/b.js";',
    "api.js": "export const get = (url) => fetch(url);",
    "shared.js": 'import { b } from "./pages/b.js";',
    "pages/a.js": 'import { x } from "../shared.js";',
    "pages/b.js": 'import { a } from "./a.js";\nfetch("/api/jobs");',
    "pages/c.js": 'import { get } from "../api.js";',
  };
  assert.deepEqual(violations(modules).sort(), [
    "main.js does not import the page module pages/c.js",
    "pages/a.js reaches the page module pages/b.js",
    "pages/b.js calls fetch; use the client in api.js",
    "pages/b.js imports the page module pages/a.js",
    "pages/b.js reaches the page module pages/a.js",
    "shared.js imports the page module pages/b.js",
  ]);
});
