"""Data for mmtask: read posts (MVSA, manifests), decode images, build tf.data pipelines.

Every reader returns `Posts`, and `make_dataset` turns `Posts` into batches of
`(features, labels, masks)`, so models never depend on where the data came from.
"""

from mmtask.data.images import decode_image
from mmtask.data.manifest import read_manifest
from mmtask.data.mvsa import merge_post_label, read_mvsa
from mmtask.data.pipeline import features_only, make_dataset
from mmtask.data.posts import SENTIMENT_LABELS, Posts, ReadReport
from mmtask.data.sources import read_posts
from mmtask.data.synthetic import write_synthetic_manifest, write_synthetic_mvsa
from mmtask.data.text_io import read_text_file
from mmtask.data.tfds import (
    ManifestBuilder,
    ManifestConfig,
    MvsaBuilder,
    from_tfds,
    posts_dataset_from_tfds,
)

__all__ = [
    "SENTIMENT_LABELS",
    "ManifestBuilder",
    "ManifestConfig",
    "MvsaBuilder",
    "Posts",
    "ReadReport",
    "decode_image",
    "features_only",
    "from_tfds",
    "make_dataset",
    "merge_post_label",
    "posts_dataset_from_tfds",
    "read_manifest",
    "read_mvsa",
    "read_posts",
    "read_text_file",
    "write_synthetic_manifest",
    "write_synthetic_mvsa",
]
