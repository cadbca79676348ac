"""TensorFlow Datasets for mmtask: prepare local data sets once, read them as mmtask batches.

`MvsaBuilder` and `ManifestBuilder` write an MVSA folder or manifests into
sharded TFDS records (manual-download style: nothing is fetched), with the
class names in `info.metadata["label_names"]`. `posts_dataset_from_tfds`
serves such a data set like `make_dataset`, and `from_tfds` does the same for
any TFDS data set with a text and an image feature.
"""

from mmtask.data.tfds.manifest_builder import ManifestBuilder, ManifestConfig
from mmtask.data.tfds.mvsa_builder import MvsaBuilder, MvsaConfig
from mmtask.data.tfds.pipeline import from_tfds, posts_dataset_from_tfds
from mmtask.data.tfds.posts_builder import LABEL_NAMES_KEY, PostsBuilder, post_features

__all__ = [
    "LABEL_NAMES_KEY",
    "ManifestBuilder",
    "ManifestConfig",
    "MvsaBuilder",
    "MvsaConfig",
    "PostsBuilder",
    "from_tfds",
    "post_features",
    "posts_dataset_from_tfds",
]
