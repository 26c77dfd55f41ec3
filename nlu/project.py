"""The Rasa project on disk and its training: retrain only when the inputs changed."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_DIR = Path(__file__).resolve().parent / "project"


class TrainingFailed(RuntimeError):
    pass


def rasa_environment(cache_dir: Path) -> dict[str, str]:
    """Environment for Rasa child processes: no telemetry, caches inside the repo's var/."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        RASA_CACHE_DIRECTORY=str(cache_dir / "rasa-cache"),
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        PYTHONWARNINGS="ignore",
    )
    return env


@dataclass(frozen=True)
class NluProject:
    """A Rasa project directory, the models directory, and the Rasa installation to use."""

    project_dir: Path = PROJECT_DIR
    models_dir: Path = REPO_ROOT / "models"
    rasa_venv: Path = REPO_ROOT / ".venv-rasa"
    var_dir: Path = REPO_ROOT / "var"

    @property
    def rasa_bin(self) -> Path:
        return self.rasa_venv / "bin" / "rasa"

    def input_files(self) -> Iterator[Path]:
        yield self.project_dir / "config.yml"
        yield self.project_dir / "domain.yml"
        yield from sorted((self.project_dir / "data").rglob("*.yml"))

    def fingerprint(self) -> str:
        """Hash of everything that changes the trained model: inputs and the Rasa pins."""
        digest = hashlib.sha256()
        constraints = self.project_dir.parent / "rasa-constraints.txt"
        for path in [*self.input_files(), constraints]:
            digest.update(path.relative_to(self.project_dir.parent).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
        return digest.hexdigest()[:16]

    def model_path(self) -> Path:
        return self.models_dir / f"nlu-{self.fingerprint()}.tar.gz"

    def needs_training(self) -> bool:
        return not self.model_path().is_file()

    def train(self, *, force: bool = False, quiet: bool = False) -> Path:
        """Train the NLU model unless an up-to-date one exists; returns the model file.

        Rasa's own progress bars (epochs) stream to stderr so long training shows progress.
        The model is written under a temporary name and renamed, so an interrupted run never
        leaves a file that looks finished.
        """
        target = self.model_path()
        if target.is_file() and not force:
            log.info("NLU model is up to date: %s", target.name)
            return target
        if not self.rasa_bin.exists():
            raise TrainingFailed(f"Rasa is not installed at {self.rasa_bin}; run `make setup`")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        partial_name = target.name.removesuffix(".tar.gz") + "-partial"
        command = [
            str(self.rasa_bin),
            "train",
            "nlu",
            "--config",
            str(self.project_dir / "config.yml"),
            "--nlu",
            str(self.project_dir / "data"),
            "--domain",
            str(self.project_dir / "domain.yml"),
            "--out",
            str(self.models_dir),
            "--fixed-model-name",
            partial_name,
        ]
        print(f"Training NLU model {target.name} (Rasa prints epoch progress) …", file=sys.stderr, flush=True)
        result = subprocess.run(
            command,
            cwd=self.var_dir if self.var_dir.is_dir() else self.project_dir,
            env=rasa_environment(self.var_dir),
            stdout=subprocess.DEVNULL if quiet else sys.stderr,
            stderr=subprocess.STDOUT if not quiet else subprocess.PIPE,
            check=False,
        )
        produced = self.models_dir / f"{partial_name}.tar.gz"
        if result.returncode != 0 or not produced.is_file():
            detail = result.stderr.decode(errors="replace")[-2000:] if quiet and result.stderr else ""
            raise TrainingFailed(f"rasa train nlu exited with {result.returncode}. {detail}".strip())
        produced.replace(target)
        for stale in self.models_dir.glob("nlu-*.tar.gz"):
            if stale != target:
                stale.unlink()
        print(f"NLU model ready: {target}", file=sys.stderr, flush=True)
        return target
