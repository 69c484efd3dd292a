// zkfl's bridge to zokrates-js (ZoKrates 0.8.8 in WebAssembly): one command per run.
// Usage: node driver.mjs <zokrates-js folder> <command>, with a JSON request on stdin
// naming files; binary artifacts (program, proving key) stay on disk, never in JSON.
// Answers one JSON object on stdout; a failure answers {"error": "..."} and exits 1.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [moduleDir, command] = process.argv.slice(2);
const request = JSON.parse(fs.readFileSync(0, "utf8"));
const { initialize } = await import(pathToFileURL(path.join(moduleDir, "index-node.js")).href);
const zokrates = (await initialize()).withOptions({ backend: "ark", scheme: "g16", curve: "bn128" });

const readJson = (file) => JSON.parse(fs.readFileSync(file, "utf8"));
const program = () => ({ program: new Uint8Array(fs.readFileSync(request.program)), abi: readJson(request.abi) });

const commands = {
  compile() {
    const started = Date.now();
    const artifacts = zokrates.compile(fs.readFileSync(request.source, "utf8"));
    fs.writeFileSync(request.program, artifacts.program);
    fs.writeFileSync(request.abi, JSON.stringify(artifacts.abi));
    return { constraints: artifacts.constraintCount, seconds: (Date.now() - started) / 1000 };
  },
  setup() {
    const started = Date.now();
    const keys = zokrates.setup(new Uint8Array(fs.readFileSync(request.program)), request.entropy);
    fs.writeFileSync(request.pk, keys.pk);
    fs.writeFileSync(request.vk, JSON.stringify(keys.vk));
    return { seconds: (Date.now() - started) / 1000 };
  },
  witness() {
    // Runs the program on the arguments: its asserts fail here on a bad witness.
    const result = zokrates.computeWitness(program(), request.args, { logCallback: () => {} });
    return { output: JSON.parse(result.output) };
  },
  prove() {
    const timings = {};
    let started = Date.now();
    const compiled = program();
    const result = zokrates.computeWitness(compiled, request.args, { logCallback: () => {} });
    timings.witness = (Date.now() - started) / 1000;
    started = Date.now();
    const proof = zokrates.generateProof(compiled.program, result.witness, new Uint8Array(fs.readFileSync(request.pk)));
    timings.prove = (Date.now() - started) / 1000;
    return { proof, output: JSON.parse(result.output), timings };
  },
  verify() {
    return { ok: zokrates.verify(readJson(request.vk), request.proof) };
  },
  export() {
    fs.writeFileSync(request.verifier, zokrates.exportSolidityVerifier(readJson(request.vk)));
    return {};
  },
};

try {
  if (!(command in commands)) throw new Error(`unknown command ${command}`);
  process.stdout.write(JSON.stringify(commands[command]()));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error && error.message ? error.message : error) }));
  process.exit(1);
}
