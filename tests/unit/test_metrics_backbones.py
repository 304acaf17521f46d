"""Backbones load real files through the production loader: InceptionV3 (torch-fidelity layout),
open_clip from a custom config, TorchScript I3D; weight checks; FID equals torchmetrics' FID."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from evaluation.features.registry import load_backbone
from evaluation.features.weights import WeightsRejected, WeightsUnavailable, sha256_file
from evaluation.metrics.frechet import frechet_distance
from evaluation.metrics.suite import evaluate, reference_from_media

TINY_CLIP_NAME = "test-clip-micro"
TINY_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def save_random_inception(path: Path, seed: int = 0) -> Path:
    """A randomly initialised InceptionV3 in torch-fidelity's layout, saved as a state dict."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # keep the random initialisation
            return None

    empty = path.with_name("empty.pt")
    torch.save({}, empty)
    torch.manual_seed(seed)
    network = Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
    for module in network.modules():  # keep activations O(1) through 90+ layers
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    state = network.state_dict()
    for key, value in state.items():  # non-trivial batch-norm statistics, like trained weights
        if key.endswith("running_var"):
            value.uniform_(0.5, 1.5)
        elif key.endswith("running_mean"):
            value.uniform_(-0.1, 0.1)
    torch.save(state, path)
    return path


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A random open_clip model from a custom config: weights + `<name>.json` next to them."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{TINY_CLIP_NAME}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_CLIP_NAME)
    weights = folder / f"{TINY_CLIP_NAME}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return weights


class TinyI3D(torch.nn.Module):
    """A 3D-conv network with the StyleGAN-V I3D calling convention."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 8, kernel_size=(3, 7, 7), stride=(2, 4, 4))
        self.head = torch.nn.Linear(8, 6)

    def forward(
        self,
        x: torch.Tensor,
        rescale: bool = False,
        resize: bool = False,
        return_features: bool = False,
    ) -> torch.Tensor:
        h = torch.relu(self.conv(x)).mean(dim=(2, 3, 4))
        return h if return_features else self.head(h)


def save_tiny_i3d(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.jit.script(TinyI3D()).save(str(path))
    return path


def images(seed: int, n: int, size: int, shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(0, 200, (n, size, size, 3)) + shift, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory) -> Path:
    return save_random_inception(tmp_path_factory.mktemp("inception") / "inception.pt")


def test_missing_weights_are_unavailable_naming_the_setting(tmp_path):
    with pytest.raises(WeightsUnavailable, match="INCEPTION_WEIGHTS_PATH") as info:
        load_backbone("inception", weights_path=None)
    assert info.value.setting == "INCEPTION_WEIGHTS_PATH"
    with pytest.raises(WeightsUnavailable, match="I3D_WEIGHTS_PATH.*|does not exist"):
        load_backbone("i3d", weights_path=tmp_path / "nope.pt")


def test_unpublished_sha256_is_refused_unless_marked_custom(inception_file):
    with pytest.raises(WeightsRejected, match="6726825d0af5.*INCEPTION_WEIGHTS_CUSTOM"):
        load_backbone("inception", weights_path=inception_file)
    backbone = load_backbone("inception", weights_path=inception_file, allow_custom=True)
    assert backbone.custom is True
    assert backbone.weights_sha256 == sha256_file(inception_file)


def test_a_file_with_the_published_hash_needs_no_custom_mark(tmp_path):
    from evaluation.features.weights import verify_weights

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    sha = sha256_file(weights)
    assert (
        verify_weights(
            path=weights,
            setting="X",
            what="x",
            published_sha256=sha,
            allow_custom=False,
            custom_hint="",
        )
        == sha
    )


def test_pickled_objects_and_wrong_layouts_are_refused(tmp_path):
    pickled = tmp_path / "pickled.pt"
    torch.save({"conv.weight": torch.zeros(1), "extra": Path("/etc/passwd")}, pickled)
    with pytest.raises(WeightsRejected, match="cannot read weights file"):
        load_backbone("inception", weights_path=pickled, allow_custom=True)
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(WeightsRejected, match="torch-fidelity's layout"):
        load_backbone("inception", weights_path=wrong, allow_custom=True)


def test_inception_features_equal_torch_fidelity_and_fid_equals_torchmetrics(inception_file):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torchmetrics.image.fid import FrechetInceptionDistance

    backbone = load_backbone("inception", weights_path=inception_file, allow_custom=True)
    real, fake = images(1, 4, 299), images(2, 4, 299, shift=40)

    peer_net = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(inception_file)
    )
    with torch.no_grad():
        (peer_features,) = peer_net(torch.from_numpy(real[:1]).permute(0, 3, 1, 2))
    torch.testing.assert_close(backbone.encode_images(real[:1]), peer_features)

    class Pool3(torch.nn.Module):
        num_features = 2048

        def forward(self, x):
            return peer_net(x)[0]

    peer = FrechetInceptionDistance(feature=Pool3())
    peer.update(torch.from_numpy(real).permute(0, 3, 1, 2), real=True)
    peer.update(torch.from_numpy(fake).permute(0, 3, 1, 2), real=False)

    reference = reference_from_media(backbone, [real[:3], real[3:]])
    ours = evaluate(
        "fid",
        backbone=backbone,
        reference=reference,
        batches=[(fake[:3], None), (fake[3:], None)],
        groups=1,
    )
    # Four samples in 2048-d: singular covariances; the two square-root methods differ only
    # in rounding of the ~2000 zero eigenvalues.
    assert ours.value == pytest.approx(float(peer.compute()), rel=1e-5)
    assert ours.n == 4 and ours.backbone == "inception-v3-tf-pool3"
    assert ours.weights_sha256 == sha256_file(inception_file)


def test_clip_from_a_custom_config_gives_unit_embeddings_and_the_clip_score(tmp_path):
    weights = save_tiny_clip(tmp_path / "clip")
    backbone = load_backbone(
        "clip", weights_path=weights, model_name=TINY_CLIP_NAME, allow_custom=True
    )
    assert backbone.name == f"clip:{TINY_CLIP_NAME}" and backbone.dim == 16
    pics = images(3, 4, 48)
    prompts = ["a red circle", "a blue square", "a green triangle", "a big yellow square"]
    img, txt = backbone.encode_images(pics), backbone.encode_texts(prompts)
    torch.testing.assert_close(img.norm(dim=1), torch.ones(4))
    expected = (100 * (img * txt).sum(dim=1).clamp_min(0)).double().mean()
    result = evaluate(
        "clip_score",
        backbone=backbone,
        reference=None,
        batches=[(pics[:3], prompts[:3]), (pics[3:], prompts[3:])],
    )
    assert result.value == pytest.approx(float(expected), rel=1e-6)
    assert result.n == 4


def test_clip_weights_for_another_architecture_are_refused(tmp_path):
    weights = save_tiny_clip(tmp_path / "clip")
    with pytest.raises(WeightsRejected, match="does not match open_clip model 'ViT-B-32'"):
        load_backbone("clip", weights_path=weights, model_name="ViT-B-32", allow_custom=True)
    with pytest.raises(WeightsRejected, match="no published sha256"):
        load_backbone("clip", weights_path=weights, model_name=TINY_CLIP_NAME)


def test_i3d_torchscript_gives_features_and_fvd_runs_on_tiny_videos(tmp_path):
    backbone = load_backbone(
        "i3d", weights_path=save_tiny_i3d(tmp_path / "i3d.pt"), allow_custom=True
    )
    assert backbone.dim == 8
    rng = np.random.default_rng(4)
    real = rng.integers(0, 255, (6, 16, 20, 20, 3), dtype=np.uint8)
    fake = np.clip(real.astype(int) + 60, 0, 255).astype(np.uint8)
    reference = reference_from_media(backbone, [real])
    same = evaluate("fvd", backbone=backbone, reference=reference, batches=[(real, None)], groups=1)
    shifted = evaluate(
        "fvd", backbone=backbone, reference=reference, batches=[(fake, None)], groups=1
    )
    assert abs(same.value) < 1e-9 < shifted.value
    mu, sigma = reference.mu, reference.sigma
    features = backbone.encode_videos(fake).double().numpy()
    direct = frechet_distance(features.mean(0), np.cov(features, rowvar=False), mu, sigma)
    assert shifted.value == pytest.approx(direct, rel=1e-9)
    with pytest.raises(ValueError, match="8 frames; FVD needs at least 16"):
        backbone.encode_videos(real[:, :8])
