"""Presets load from local folders only: remote handles and bare names are refused, offline."""

import socket

import keras
import pytest

from mmtask.encoders import KerasHubImageEncoder, KerasHubTextEncoder
from mmtask.errors import MmtaskError

REMOTE = ["hf://keras/bert_tiny_en_uncased", "kaggle://keras/bert/keras/bert_tiny_en_uncased"]
BARE = ["bert_tiny_en_uncased", "efficientnet_lite0_ra_imagenet"]


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise AssertionError(f"network attempt to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: refuse(None, host))
    return attempts


@pytest.mark.parametrize("preset", REMOTE + BARE)
@pytest.mark.parametrize("encoder", [KerasHubTextEncoder, KerasHubImageEncoder])
def test_remote_or_bare_presets_are_refused_without_network(encoder, preset, no_network):
    with pytest.raises(MmtaskError, match="not a local folder"):
        encoder(preset=preset)
    assert no_network == []


@pytest.mark.parametrize("preset", REMOTE + BARE)
def test_a_loaded_file_naming_a_remote_preset_is_refused_without_network(preset, no_network):
    # What a crafted .keras file's config would make `load_model` construct.
    config = {
        "module": "mmtask.encoders.keras_hub_text",
        "class_name": "KerasHubTextEncoder",
        "config": {"name": "text_encoder", "preset": preset, "sequence_length": 8},
        "registered_name": "mmtask>KerasHubTextEncoder",
    }
    # Keras wraps the encoder's MmtaskError when it deserializes.
    with pytest.raises((MmtaskError, TypeError), match="not a local folder"):
        keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert no_network == []
