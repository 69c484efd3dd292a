"""Compile Solidity with the pinned solc-js (npm ``solc``), through standard JSON.

No native solc is downloaded: the compiler is the WebAssembly build installed by
``make setup``. Outputs are cached by a hash of the sources, the compiler version and
the settings, so a contract compiles once per machine.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkfl.errors import ConfigError
from zkfl.paths import cache_dir, node_binary, openzeppelin_root, solc_js_module

CONTRACTS_DIR = Path(__file__).resolve().parent

# The import callback resolves "@openzeppelin/contracts/..." from the pinned package.
_NODE_SCRIPT = r"""
const fs = require('fs');
const path = require('path');
const solc = require(process.argv[1]);
const ozRoot = process.argv[2];
const input = fs.readFileSync(0, 'utf8');
function findImports(p) {
  const prefix = '@openzeppelin/contracts/';
  if (p.startsWith(prefix)) {
    const file = path.join(ozRoot, p.slice(prefix.length));
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, 'utf8') };
  }
  return { error: 'import not found: ' + p };
}
process.stdout.write(JSON.stringify({
  version: solc.version(),
  output: JSON.parse(solc.compile(input, { import: findImports })),
}));
"""


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # creation code, 0x-prefixed
    runtime: str  # runtime code, 0x-prefixed: what `eth_getCode` returns once deployed
    deployed_size: int  # bytes of runtime code (EIP-170 limit: 24,576)
    # (offset, length) of each immutable in the runtime code: zeros here, set by the constructor
    immutables: tuple[tuple[int, int], ...] = ()


def _settings(via_ir: bool) -> dict[str, Any]:
    return {
        "optimizer": {"enabled": True, "runs": 200},
        "viaIR": via_ir,
        "evmVersion": "cancun",
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object",
                                           "evm.deployedBytecode.immutableReferences"]}},
    }


def compile_sources(sources: dict[str, str], via_ir: bool = False) -> dict[str, CompiledContract]:
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": _settings(via_ir),
    }
    module = solc_js_module()
    package = json.loads((module / "package.json").read_text())
    key_material = json.dumps({"solc": package["version"], "request": request}, sort_keys=True)
    key = hashlib.sha256(key_material.encode()).hexdigest()[:24]
    cached = cache_dir("solc") / f"{key}.json"
    if cached.exists():
        output = json.loads(cached.read_text())
    else:
        proc = subprocess.run(
            [node_binary(), "-e", _NODE_SCRIPT, str(module), str(openzeppelin_root())],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise ConfigError(f"solc-js failed: {proc.stderr.strip()[-500:]}")
        output = json.loads(proc.stdout)["output"]
        errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
        if errors:
            raise ConfigError("solidity compile error: " + errors[0].get("formattedMessage", str(errors[0])))
        cached.write_text(json.dumps(output))
    contracts: dict[str, CompiledContract] = {}
    for unit in output["contracts"].values():
        for name, artefact in unit.items():
            contracts[name] = CompiledContract(
                name=name,
                abi=artefact["abi"],
                bytecode="0x" + artefact["evm"]["bytecode"]["object"],
                runtime="0x" + artefact["evm"]["deployedBytecode"]["object"],
                deployed_size=len(artefact["evm"]["deployedBytecode"]["object"]) // 2,
                immutables=tuple(sorted((int(r["start"]), int(r["length"]))
                                        for refs in artefact["evm"]["deployedBytecode"].get(
                                            "immutableReferences", {}).values() for r in refs)),
            )
    return contracts


def compile_contract(path: Path, name: str, via_ir: bool = False) -> CompiledContract:
    contracts = compile_sources({path.name: path.read_text()}, via_ir=via_ir)
    if name not in contracts:
        raise ConfigError(f"contract {name} not found in {path}")
    return contracts[name]


#: The Federation's sources: its two contracts share one storage layout (FederationBase.sol).
FEDERATION_SOURCES = ("FederationBase.sol", "Federation.sol", "FederationExtension.sol")


def _federation_unit(name: str) -> CompiledContract:
    sources = {file: (CONTRACTS_DIR / file).read_text() for file in FEDERATION_SOURCES}
    return compile_sources(sources, via_ir=True)[name]


def federation_contract() -> CompiledContract:
    return _federation_unit("Federation")


def federation_extension_contract() -> CompiledContract:
    """The Federation's cold paths, run by its DELEGATECALL (see FederationExtension.sol)."""
    return _federation_unit("FederationExtension")


def poseidon_contract() -> CompiledContract:
    return compile_contract(CONTRACTS_DIR / "PoseidonT2.sol", "PoseidonT2")
