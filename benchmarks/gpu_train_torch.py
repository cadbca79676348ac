"""The PyTorch side of `gpu_train.py`: the same architecture as a hand-written, compiled loop.

Imported only when the torch side runs, so `gpu_train.py` needs no torch
otherwise. The image net is timm's `efficientnet_lite0` where timm is
installed, else `LiteNet`, the same stages built from the keras-hub config
`gpu_train.py` uses; the text net is transformers' `BertModel` of the same
configuration where transformers is installed, else `nn.TransformerEncoder`.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class InvertedResidual(nn.Module):
    """EfficientNet-Lite's MBConv block: 1x1 expand, depthwise conv, 1x1 project; no SE."""

    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        hidden = inputs * expansion
        layers = []
        if expansion != 1:
            layers += [nn.Conv2d(inputs, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, outputs, 1, bias=False),
            nn.BatchNorm2d(outputs),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class LiteNet(nn.Module):
    """EfficientNet-Lite from a keras-hub `EfficientNetBackbone` config, pooled to 1280."""

    def __init__(self, config: dict, features: int = 1280):
        super().__init__()
        first = config["stackwise_input_filters"][0]
        layers = [nn.Conv2d(3, first, 3, 2, 1, bias=False), nn.BatchNorm2d(first), nn.ReLU6()]
        stages = zip(
            config["stackwise_input_filters"],
            config["stackwise_output_filters"],
            config["stackwise_kernel_sizes"],
            config["stackwise_strides"],
            config["stackwise_expansion_ratios"],
            config["stackwise_num_repeats"],
            strict=True,
        )
        for inputs, outputs, kernel, stride, expansion, repeats in stages:
            for i in range(repeats):
                layers.append(
                    InvertedResidual(
                        inputs if i == 0 else outputs,
                        outputs,
                        kernel,
                        stride if i == 0 else 1,
                        expansion,
                    )
                )
        last = config["stackwise_output_filters"][-1]
        layers += [nn.Conv2d(last, features, 1, bias=False), nn.BatchNorm2d(features), nn.ReLU6()]
        self.body = nn.Sequential(*layers)
        self.num_features = features

    def forward(self, images):
        return self.body(images).mean(dim=(2, 3))


def masked_mean(hidden, mask):
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class TransformerText(nn.Module):
    """Token + position embeddings, `nn.TransformerEncoder`, masked mean."""

    def __init__(self, text: dict):
        super().__init__()
        self.tokens = nn.Embedding(text["vocabulary"], text["width"])
        self.positions = nn.Embedding(text["length"], text["width"])
        layer = nn.TransformerEncoderLayer(
            text["width"],
            text["heads"],
            text["ff"],
            dropout=0.1,
            activation="gelu",
            batch_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, text["layers"], enable_nested_tensor=False)

    def forward(self, ids):
        mask = ids != 0
        positions = torch.arange(ids.shape[1], device=ids.device)
        hidden = self.encoder(
            self.tokens(ids) + self.positions(positions), src_key_padding_mask=~mask
        )
        return masked_mean(hidden, mask)


class BertText(nn.Module):
    """transformers' `BertModel`, masked mean of the last hidden states."""

    def __init__(self, text: dict):
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(
            vocab_size=text["vocabulary"],
            hidden_size=text["width"],
            num_hidden_layers=text["layers"],
            num_attention_heads=text["heads"],
            intermediate_size=text["ff"],
            max_position_embeddings=max(text["length"], 64),
        )
        self.bert = BertModel(config, add_pooling_layer=False)

    def forward(self, ids):
        mask = ids != 0
        hidden = self.bert(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return masked_mean(hidden, mask)


class Joint(nn.Module):
    """Image and text nets, concat fusion, one linear head per task."""

    def __init__(self, image_net, text_net, text_width: int, fusion_units: int, tasks: dict):
        super().__init__()
        self.image_net, self.text_net, self.tasks = image_net, text_net, dict(tasks)
        image_width = image_net.num_features
        self.fusion = nn.Sequential(
            nn.Linear(image_width + text_width, fusion_units), nn.ReLU(), nn.Dropout(0.1)
        )
        widths = {"image": image_width, "text": text_width, "fused": fusion_units}
        self.heads = nn.ModuleDict({t: nn.Linear(widths[m], 3) for t, m in self.tasks.items()})

    def forward(self, ids, images):
        image = self.image_net((images / 127.5 - 1.0).permute(0, 3, 1, 2))
        text = self.text_net(ids)
        vectors = {"image": image, "text": text}
        vectors["fused"] = self.fusion(torch.cat([image, text], dim=-1))
        return {t: self.heads[t](vectors[m]) for t, m in self.tasks.items()}


def build(size: dict, tasks: dict) -> tuple[nn.Module, dict]:
    """The joint model and the names of the nets it uses."""
    try:
        import timm

        image_net = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
        image_name = "timm efficientnet_lite0"
    except ImportError:
        image_net, image_name = LiteNet(size["image_net"]), "LiteNet (keras-hub config)"
    text = size["text"]
    try:
        text_net, text_name = BertText(text), "transformers BertModel"
    except ImportError:
        text_net, text_name = TransformerText(text), "nn.TransformerEncoder"
    shape = f"{text['layers']}x{text['width']}"
    joint = Joint(image_net, text_net, text["width"], size["fusion_units"], tasks)
    return joint, {"image": image_name, "text": f"{text_name} {shape}"}


def examples_per_s(
    size: dict,
    tasks: dict,
    batches: list,
    precision: str,
    warmup: int,
    steps: int,
    seed: int,
    compile_backend: str = "inductor",
) -> tuple[float, dict]:
    """Training examples/s of the compiled loop after `warmup` steps, and what it ran."""
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    joint, names = build(size, tasks)
    joint = joint.to(device).train()
    optimizer = torch.optim.Adam(joint.parameters(), lr=1e-3)
    autocast = precision == "mixed_bfloat16"

    def loss_of(ids, images, labels, masks):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = joint(ids, images)
        total = 0.0
        for task in tasks:
            losses = F.cross_entropy(logits[task].float(), labels[task], reduction="none")
            total = total + (losses * masks[task]).sum() / masks[task].sum().clamp(min=1.0)
        return total

    compiled = torch.compile(loss_of, backend=compile_backend)
    on_device = [
        (
            torch.as_tensor(features["text"], device=device).long(),
            torch.as_tensor(features["image"], device=device),
            {t: torch.as_tensor(v, device=device).long() for t, v in labels.items()},
            {t: torch.as_tensor(v, device=device) for t, v in masks.items()},
        )
        for features, labels, masks in batches
    ]

    def run(count: int) -> None:
        for i in range(count):
            optimizer.zero_grad(set_to_none=True)
            compiled(*on_device[i % len(on_device)]).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    start = time.perf_counter()
    run(max(warmup, 2))  # dynamo may compile again on the second call
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    run(steps)
    rate = steps * len(batches[0][0]["text"]) / (time.perf_counter() - start)
    return rate, {
        **names,
        "device": device.type,
        "compile_backend": compile_backend,
        "warmup_s": round(compile_s, 1),
        "torch_version": torch.__version__,
    }
