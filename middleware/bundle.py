"""A trained and proven update, before it is signed and sent: what `client train` writes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zkfl.errors import ZkflError
from zkfl.middleware.messages import ClientMetrics


@dataclass
class UpdateBundle:
    task_id: int
    round: int
    num_samples: int
    update_scale: int
    update: list[int]  # the proven step's output, integers at update_scale
    public_values: list[int]
    proof_bytes: bytes  # the proof as the step's verifier contract takes it
    proof: dict[str, Any] = field(default_factory=dict)  # the backend's own proof document, for the record
    metrics: ClientMetrics = field(default_factory=ClientMetrics)

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "proof.json").write_text(json.dumps(self.proof))
        (folder / "update.json").write_text(json.dumps({"scale": self.update_scale, "values": self.update}))
        (folder / "public.json").write_text(json.dumps({
            "task_id": self.task_id, "round": self.round, "num_samples": self.num_samples,
            "public_values": [hex(v) for v in self.public_values], "proof": "0x" + self.proof_bytes.hex(),
            "metrics": asdict(self.metrics),
        }, indent=2))
        return folder

    @classmethod
    def load(cls, folder: Path) -> UpdateBundle:
        folder = Path(folder)
        try:
            proof = json.loads((folder / "proof.json").read_text())
            update = json.loads((folder / "update.json").read_text())
            public = json.loads((folder / "public.json").read_text())
        except FileNotFoundError as exc:
            raise ZkflError(f"{folder} is not a trained update: {Path(exc.filename).name} is missing "
                            "(run `zkfl client train --out DIR` first)") from None
        except json.JSONDecodeError as exc:
            raise ZkflError(f"{folder}: a file is not valid JSON ({exc})") from None
        try:
            return cls(
                task_id=int(public["task_id"]), round=int(public["round"]), num_samples=int(public["num_samples"]),
                update_scale=int(update["scale"]), update=[int(v) for v in update["values"]],
                public_values=[int(v, 16) for v in public["public_values"]], proof=proof,
                proof_bytes=_proof_bytes(public, proof),
                metrics=ClientMetrics(**public.get("metrics", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ZkflError(f"{folder} is not a trained update: {type(exc).__name__}: {exc}") from None


def _proof_bytes(public: dict[str, Any], document: Any) -> bytes:
    """The proof as submitted (``public.json``'s ``proof``). A backend's own document may carry
    the same bytes (ezkl's ``hex_proof``): then they must agree, or the bundle is refused, so
    that what a tool checks in ``proof.json`` is what is sent."""
    native = document.get("hex_proof") if isinstance(document, dict) else None
    if "proof" not in public and native is None:
        raise ValueError("public.json has no proof")
    text = public.get("proof", native)
    proof = bytes.fromhex(str(text).removeprefix("0x"))
    if native is not None and bytes.fromhex(str(native).removeprefix("0x")) != proof:
        raise ValueError("proof.json's hex_proof differs from the proof in public.json")
    if not proof:
        raise ValueError("the proof is empty")
    return proof
