"""Text encoders with `reads="token_ids"`: the pipeline's `tokenize`, then the same encoding.

An encoder that reads token ids must give, from `tokenize(texts)`, what the
same encoder reading raw strings gives from `texts`; blank texts come out
as all-padding rows.
"""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from tiny_models import tiny_bert_backbone

from mmtask.encoders import KerasHubTextEncoder, TransformerTextEncoder

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "good", "bad", "day", "night"]
TEXTS = tf.constant(["the good day", "Bad night", "good good good good good good", "  "])


def transformer(reads):
    return TransformerTextEncoder(
        max_tokens=16,
        sequence_length=5,
        embed_dim=8,
        intermediate_dim=8,
        dropout=0.0,
        vocabulary=VOCAB[5:],
        reads=reads,
    )


def bert(reads):
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True)
    backbone = tiny_bert_backbone(len(VOCAB), dropout=0.0)
    return KerasHubTextEncoder(
        tokenizer=tokenizer, backbone=backbone, sequence_length=6, reads=reads
    )


@pytest.mark.parametrize("make", [transformer, bert], ids=["transformer", "keras_hub"])
def test_token_ids_encode_as_the_raw_texts_do(make):
    keras.utils.set_random_seed(0)
    from_text = make("text")
    reads_ids = make("token_ids")
    assert (reads_ids.input_dtype, from_text.input_dtype) == ("int32", "string")
    assert reads_ids.example_shape((4, 4)) == (from_text.sequence_length,)
    expected = from_text(TEXTS)
    ids = reads_ids.tokenize(TEXTS)
    assert ids.dtype == tf.int32 and ids.shape == (4, from_text.sequence_length)
    assert not ids.numpy()[3].any(), ids.numpy()[3]  # a blank text is all padding
    assert ids.numpy()[:3].any(axis=1).all()
    reads_ids(ids)  # builds it
    reads_ids.set_weights(from_text.get_weights())
    actual = reads_ids(ids)
    for key in ("vector", "sequence", "mask"):
        np.testing.assert_allclose(
            np.asarray(actual[key])[:3], np.asarray(expected[key])[:3], atol=1e-5, err_msg=key
        )
    clone = type(reads_ids).from_config(reads_ids.get_config())
    assert clone.reads == "token_ids"


def test_reads_is_checked():
    with pytest.raises(ValueError, match="Invalid value for `reads`.*Received: 'ids'"):
        transformer("ids")
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=["[UNK]", "[PAD]", *VOCAB[2:]])
    backbone = tiny_bert_backbone(len(VOCAB))
    with pytest.raises(ValueError, match="pads with 1"):
        KerasHubTextEncoder(tokenizer=tokenizer, backbone=backbone, reads="token_ids")


def test_export_and_feature_extraction_tokenize_for_a_token_id_encoder(tmp_path):
    from mmtask.data import Posts, ReadReport
    from mmtask.export import export_saved_model
    from mmtask.heads import ClassificationHead
    from mmtask.models import MultiTaskModel
    from mmtask.transfer.features import encode_posts

    keras.utils.set_random_seed(0)
    encoder = transformer("token_ids")
    model = MultiTaskModel(
        encoders={"text": encoder},
        heads={"t": ClassificationHead(2)},
        task_inputs={"t": "text"},
        label_names={"t": ["no", "yes"]},
        image_size=(4, 4),
    )
    expected = np.asarray(model.predict_on_batch({"text": encoder.tokenize(TEXTS)})["t"])
    served = tf.saved_model.load(str(export_saved_model(model, tmp_path / "export")))
    np.testing.assert_allclose(
        served.serve(text=TEXTS)["t_probabilities"].numpy(), expected, atol=1e-5
    )
    texts = [t.decode() for t in TEXTS.numpy()]
    posts = Posts([str(i) for i in range(4)], texts, [""] * 4, {}, {}, ReadReport("by hand"))
    vectors = encode_posts(posts, encoder, "text", batch_size=2, verbose=0)
    np.testing.assert_allclose(
        vectors, np.asarray(encoder(encoder.tokenize(TEXTS))["vector"]), atol=1e-5
    )
