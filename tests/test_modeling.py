"""The job's model: built from a small config (with overrides), or a local checkpoint with a new head."""

from __future__ import annotations

import pytest
import torch
from transformers import ResNetConfig, ViTForImageClassification, ViTImageProcessor

from sada_hf.arguments import ModelArguments
from sada_hf.modeling import apply_config_overrides, build_model_and_processor


def test_model_from_config_and_from_a_local_checkpoint(tmp_path):
    labels = ["cat", "dog", "fish"]
    model, processor = build_model_and_processor(ModelArguments(model_type="resnet", image_size=32), labels)
    assert model.config.num_labels == 3 and model.config.id2label[2] == "fish"
    assert processor.size == {"height": 32, "width": 32}

    source = ViTForImageClassification(build_model_and_processor(ModelArguments(), ["a", "b"])[0].config)
    source.save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    model, processor = build_model_and_processor(
        ModelArguments(model_name_or_path=str(tmp_path), ignore_mismatched_sizes=True), labels
    )
    assert model.config.num_labels == 3 and processor.size["height"] == 32
    assert torch.equal(
        model.vit.embeddings.patch_embeddings.projection.weight,
        source.vit.embeddings.patch_embeddings.projection.weight,
    )


def test_overrides_change_the_built_config():
    model, _ = build_model_and_processor(
        ModelArguments(config_overrides="hidden_size=48,num_hidden_layers=2"), ["a", "b"]
    )
    assert model.config.hidden_size == 48 and model.config.num_hidden_layers == 2


def test_config_overrides_take_lists_and_refuse_unknown_keys():
    config = ResNetConfig()
    apply_config_overrides(
        config, "embedding_size=48,hidden_sizes=[8,16],depths=[1,2],layer_type=basic,downsample_in_first_stage=true"
    )
    assert (config.embedding_size, list(config.hidden_sizes), list(config.depths)) == (48, [8, 16], [1, 2])
    assert config.layer_type == "basic" and config.downsample_in_first_stage is True
    with pytest.raises(ValueError, match="no such attribute"):
        apply_config_overrides(config, "hidden_szes=[1]")
