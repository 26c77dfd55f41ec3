"""Training only when the NLU inputs changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nlu import NluProject
from nlu.project import PROJECT_DIR, TrainingFailed
from nlu.rasa_yaml import read_examples


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

    nlu_file = project_copy.project_dir / "data" / "general.yml"
    nlu_file.write_text(nlu_file.read_text(encoding="utf-8") + "    - 查物流\n", encoding="utf-8")
    changed_data = project_copy.fingerprint()
    assert changed_data != original

    config = project_copy.project_dir / "config.yml"
    config.write_text(config.read_text(encoding="utf-8").replace("max_iter: 300", "max_iter: 500"), encoding="utf-8")
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


def test_training_data_is_normalised_like_parse_input(project_copy: NluProject, tmp_path: Path) -> None:
    data = project_copy.project_dir / "data"
    (data / "extra.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: order_status\n  examples: |\n    - 我嘅訂單喺邊度\n    - 我的订单在哪里\n',
        encoding="utf-8",
    )
    out = tmp_path / "built"
    assert project_copy.build_training_data(out) > 40
    built = read_examples(out / "extra.yml")
    assert [e.text for e in built] == ["我的订单在哪里", "wo de ding dan zai na li"], (
        "normalised, the duplicate it became dropped, and a pinyin twin added (nlu/augment.py)"
    )
    regex = (out / "regex.yml").read_text(encoding="utf-8")
    assert "\\d{10,20}" in regex, "regex features are copied unchanged"
