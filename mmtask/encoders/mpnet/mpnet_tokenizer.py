"""`MPNetTokenizer`: BERT's uncased WordPiece with MPNet's special tokens.

MPNet reuses BERT's vocabulary and text splitting (lowercase, accents
stripped, punctuation and CJK characters split off) and adds RoBERTa-style
special tokens: a text is packed as `<s> ... </s>` and padded with `<pad>`;
unknown word pieces are still BERT's `[UNK]`.
"""

from __future__ import annotations

import keras
import keras_hub


@keras.saving.register_keras_serializable(package="mmtask")
class MPNetTokenizer(keras_hub.tokenizers.WordPieceTokenizer):
    """WordPiece tokenizer with MPNet's `<s>`, `</s>`, `<pad>`, `<mask>` and `[UNK]`.

    `cls_token` / `start_token` is `<s>` and `sep_token` / `end_token` is
    `</s>`, the names Hugging Face's `MPNetTokenizer` and keras-hub's BERT
    tokenizer give them, so a packer built for BERT packs MPNet's texts.

    Args:
        vocabulary: list[str] | str. Word pieces, or the path of a vocab.txt
            with one a line; must hold the five special tokens.
        lowercase: bool. Lowercase the text before splitting it.
        strip_accents: bool. Remove accent marks (as Hugging Face does
            whenever it lowercases, unless told otherwise).
        oov_token: str. The word piece for anything the vocabulary lacks.

    Example:
    ```python
    tokenizer = MPNetTokenizer(vocabulary="all-mpnet-base-v2/vocab.txt")
    tokenizer(["A café, naïvely!"])  # ragged word-piece ids
    ```
    """

    def __init__(
        self,
        vocabulary=None,
        lowercase: bool = True,
        strip_accents: bool = True,
        oov_token: str = "[UNK]",
        **kwargs,
    ):
        self._add_special_token("<s>", "cls_token")
        self._add_special_token("</s>", "sep_token")
        self._add_special_token("<pad>", "pad_token")
        self._add_special_token("<mask>", "mask_token")
        self._add_special_token(oov_token, "unk_token")
        self._add_special_token("<s>", "start_token")
        self._add_special_token("</s>", "end_token")
        super().__init__(
            vocabulary=vocabulary,
            lowercase=lowercase,
            strip_accents=strip_accents,
            oov_token=oov_token,
            **kwargs,
        )
