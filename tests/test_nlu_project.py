"""Training only when the NLU inputs changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nlu import NluProject
from nlu.project import PROJECT_DIR, TrainingFailed


@pytest.fixture
def project_copy(tmp_path: Path) -> NluProject:
    shutil.copytree(PROJECT_DIR, tmp_path / "nlu" / "project")
    shutil.copy(PROJECT_DIR.parent / "rasa-constraints.txt", tmp_path / "nlu")
    return NluProject(
        project_dir=tmp_path / "nlu" / "project",
        models_dir=tmp_path / "models",
        rasa_venv=tmp_path / "no-rasa-here",
        var_dir=tmp_path / "var",
    )


def test_the_fingerprint_follows_data_config_and_pins(project_copy: NluProject) -> None:
    original = project_copy.fingerprint()
    assert project_copy.fingerprint() == original, "stable for unchanged inputs"

    nlu_file = project_copy.project_dir / "data" / "nlu.yml"
    nlu_file.write_text(nlu_file.read_text(encoding="utf-8") + "    - 查物流\n", encoding="utf-8")
    changed_data = project_copy.fingerprint()
    assert changed_data != original

    config = project_copy.project_dir / "config.yml"
    config.write_text(config.read_text(encoding="utf-8").replace("epochs: 100", "epochs: 50"), encoding="utf-8")
    assert project_copy.fingerprint() not in (original, changed_data)

    extra = project_copy.project_dir / "data" / "more.yml"
    before = project_copy.fingerprint()
    extra.write_text('version: "3.1"\nnlu: []\n', encoding="utf-8")
    assert project_copy.fingerprint() != before, "a new data file counts"


def test_an_up_to_date_model_is_not_retrained(project_copy: NluProject) -> None:
    project_copy.models_dir.mkdir()
    project_copy.model_path().write_bytes(b"model")
    assert not project_copy.needs_training()
    # No Rasa is installed for this copy: reaching the training step would raise.
    assert project_copy.train() == project_copy.model_path()


def test_a_changed_project_needs_training_and_says_what_is_missing(project_copy: NluProject) -> None:
    assert project_copy.needs_training()
    with pytest.raises(TrainingFailed, match="make setup"):
        project_copy.train()
