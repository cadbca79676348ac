"""Text <-> image retrieval with an aligned model: top-k search and recall@k.

A model trained with an alignment module (`ContrastiveAlignment`) embeds texts
and images in one space; cosine similarity there ranks the images for a text
and the texts for an image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmtask.data import Posts, features_only, make_dataset
from mmtask.errors import MmtaskError
from mmtask.models.multitask import EMBEDDING_OUTPUTS


def embed_posts(model, posts: Posts, batch_size: int = 64, verbose: int = 0) -> dict:
    """Modality -> (N, D) L2-normalised embeddings of `posts`, in their order."""
    if model.alignment is None:
        raise MmtaskError(
            "Retrieval needs a model trained with an alignment module "
            "(spec: `alignment: {name: contrastive}`)."
        )
    data = features_only(make_dataset(posts, model=model, batch_size=batch_size))
    outputs = model.predict(data, verbose=verbose)
    return {m: _normalize(np.asarray(outputs[key])) for m, key in EMBEDDING_OUTPUTS.items()}


def top_k(queries: np.ndarray, collection: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the k nearest `collection` rows per query row."""
    if k < 1:
        raise ValueError(f"`k` must be >= 1. Received: {k}")
    similarity = _normalize(queries) @ _normalize(collection).T
    k = min(k, similarity.shape[1])
    order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(similarity, order, axis=1)


def recall_at_k(
    text_embeddings: np.ndarray, image_embeddings: np.ndarray, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, dict[int, float]]:
    """Recall@k both ways, where row i of each matrix belongs to the same post.

    Text -> image: the share of texts whose own image is among their k
    nearest images; image -> text likewise.
    """
    if len(text_embeddings) != len(image_embeddings):
        raise ValueError("Text and image embeddings must have one row per post each.")
    result = {}
    for name, queries, collection in (
        ("text_to_image", text_embeddings, image_embeddings),
        ("image_to_text", image_embeddings, text_embeddings),
    ):
        order, _ = top_k(queries, collection, max(ks))
        hits = order == np.arange(len(queries))[:, None]
        result[name] = {k: float(hits[:, :k].any(axis=1).mean()) for k in ks}
    return result


@dataclass
class Match:
    """One retrieved post: its id and cosine similarity."""

    id: str
    score: float


class Retriever:
    """Searches a collection of posts by text or by image.

    Args:
        model: MultiTaskModel with an alignment module.
        posts: Posts. The collection to search; embedded once here.

    Example:
    ```python
    retriever = Retriever(model, val_posts)
    retriever.images_for_texts(["sunny beach"], k=5)  # [[Match(id, score), ...]]
    ```
    """

    def __init__(self, model, posts: Posts, batch_size: int = 64):
        self.model = model
        self.ids = list(posts.ids)
        self.embeddings = embed_posts(model, posts, batch_size)

    def images_for_texts(self, texts: Sequence[str], k: int = 5) -> list[list[Match]]:
        """For each text, the k posts whose images are nearest."""
        queries = self._embed_queries("text", {"text": np.asarray(texts, dtype=object)})
        return self._matches(queries, self.embeddings["image"], k)

    def texts_for_images(self, images: np.ndarray, k: int = 5) -> list[list[Match]]:
        """For each decoded image (N, H, W, 3 in 0..255), the k posts whose texts are nearest."""
        queries = self._embed_queries("image", {"image": np.asarray(images, dtype="float32")})
        return self._matches(queries, self.embeddings["text"], k)

    def _embed_queries(self, modality: str, given: dict) -> np.ndarray:
        count = len(next(iter(given.values())))
        height, width = self.model.image_size
        inputs = {
            "text": np.array([""] * count, dtype=object),
            "image": np.zeros((count, height, width, 3), "float32"),
            **given,
        }
        outputs = self.model.predict(inputs, verbose=0)
        return np.asarray(outputs[EMBEDDING_OUTPUTS[modality]])

    def _matches(self, queries: np.ndarray, collection: np.ndarray, k: int) -> list[list[Match]]:
        order, scores = top_k(queries, collection, k)
        return [
            [Match(self.ids[i], float(s)) for i, s in zip(row, row_scores, strict=True)]
            for row, row_scores in zip(order, scores, strict=True)
        ]


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
