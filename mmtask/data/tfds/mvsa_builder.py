"""A TensorFlow Datasets builder for a local MVSA folder.

MVSA comes from its authors' file-sharing links, which a script cannot fetch,
so the builder is manual-download style: the user points it at the unpacked
folder and it prepares sharded records once, read later with `tfds.load`.
"""

from __future__ import annotations

import dataclasses

import tensorflow_datasets as tfds

from mmtask.data.mvsa import LABEL_FILE, TASKS, read_mvsa
from mmtask.data.posts import Posts
from mmtask.data.tfds.posts_builder import PostsBuilder


@dataclasses.dataclass(eq=False)
class MvsaConfig(tfds.core.BuilderConfig):
    """A way of reading the MVSA folder.

    Args:
        name: str. The config name, part of the prepared data's folder.
        on_error: str. `read_mvsa`'s policy for bad posts: "raise" or "skip".
    """

    on_error: str = "raise"


class MvsaBuilder(PostsBuilder):
    """MVSA (MVSA-Single or MVSA-Multiple layout) as a TFDS data set.

    Splits are the files `splits/NAME.txt` of the folder, or one "train"
    split of every post when there are none. Records are those of
    `mmtask.data.tfds.post_features` with the tasks `text_sentiment`,
    `image_sentiment` and `post_sentiment`; the class names are in
    `info.metadata["label_names"]`. As usual in TFDS, records are stored in a
    fixed shuffled order (so `shuffle_files=True` works); each carries its id.

    Configs: "strict" (default) stops at the first bad post with a DataError;
    "skip_bad" leaves bad posts out and records them in
    `info.metadata["read_reports"]`.

    Example:
        >>> builder = MvsaBuilder(data_dir="/data/tfds")
        >>> builder.download_and_prepare(
        ...     download_config=tfds.download.DownloadConfig(manual_dir="/data/mvsa_single"))
        >>> val = builder.as_dataset(split="val")
        >>> # later, in any program that imports mmtask.data:
        >>> val = tfds.load("mmtask_mvsa", split="val", data_dir="/data/tfds")
    """

    name = "mmtask_mvsa"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        MvsaConfig(name="strict", on_error="raise", description="Stop at the first bad post."),
        MvsaConfig(name="skip_bad", on_error="skip", description="Leave bad posts out."),
    ]
    DESCRIPTION = "MVSA posts (text + image) with text, image and post sentiment labels."
    HOMEPAGE = "http://www.mcrlab.net/research/mvsa-sentiment-analysis-on-multi-view-social-data/"
    CITATION = """@inproceedings{niu2016mvsa,
  title = {Sentiment Analysis on Multi-View Social Data},
  author = {Niu, Teng and Zhu, Shiai and Pang, Lei and El Saddik, Abdulmotaleb},
  booktitle = {MultiMedia Modeling (MMM 2016)},
  series = {Lecture Notes in Computer Science},
  volume = {9517},
  pages = {15--27},
  year = {2016},
  doi = {10.1007/978-3-319-27674-8_2}
}"""
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Download MVSA-Single or MVSA-Multiple from the homepage, unpack it, and give
    its folder (the one holding {LABEL_FILE}, data/ID.txt, data/ID.jpg and
    optionally splits/NAME.txt) as the manual folder:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=FOLDER))
    """

    def _tasks(self) -> list[str]:
        return list(TASKS)

    def _read_splits(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Posts]:
        on_error = self.builder_config.on_error
        root = self._manual_folder(dl_manager)
        split_files = sorted((root / "splits").glob("*.txt"))
        if not split_files:
            return {"train": read_mvsa(root, on_error=on_error)}
        return {path.stem: read_mvsa(root, split=path, on_error=on_error) for path in split_files}
