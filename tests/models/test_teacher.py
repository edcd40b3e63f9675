"""The diffusion teacher: UNet shapes and modulation, the ResShift schedule, training, the pretrained adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, UNet2DModel, VQModel
from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion_superresolution import LDMSuperResolutionPipeline
from skimage import data

from metasr.diffusion import ResShiftSchedule
from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale, bicubic_upscale
from metasr.models.orchestrator import Orchestrator
from metasr.models.pretrained_teacher import PretrainedDiffusionTeacher
from metasr.models.teacher import MetaSRTeacher, TeacherConfig
from metasr.validate.macs import count_macs
from tests.conftest import PicklePayload

pytestmark = pytest.mark.training


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny convs run fastest on one thread; on a shared CPU more threads mostly spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _teacher(scale: int = 2) -> MetaSRTeacher:
    """A seeded tiny teacher whose output layer is non-zero, so every stage shows in the output."""
    torch.manual_seed(0)
    teacher = MetaSRTeacher(TeacherConfig.tiny(scale)).eval()
    torch.nn.init.normal_(teacher.conv_out.weight, std=0.1)
    return teacher


def _modulation(teacher: MetaSRTeacher, cells: int, gain: float | None = None) -> list[tuple[torch.Tensor, ...]]:
    """Random (gain, bias) per stage on a ``cells`` x ``cells`` grid, or the identity when ``gain`` is 1."""
    if gain is not None:
        return [
            (torch.full((1, c, cells, cells), gain), torch.zeros(1, c, cells, cells)) for c in teacher.stage_channels
        ]
    return [(1 + torch.randn(1, c, cells, cells), torch.randn(1, c, cells, cells)) for c in teacher.stage_channels]


# --- architecture --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4])
def test_tiny_teacher_predicts_x0_at_hr_size(scale: int) -> None:
    teacher = _teacher(scale)
    lr = torch.rand(2, 3, 16, 12)
    x_t = torch.randn(2, 3, 16 * scale, 12 * scale)
    out = teacher(x_t, lr, torch.tensor([0, 3]))
    assert out.shape == x_t.shape
    assert torch.isfinite(out).all()
    assert teacher.stage_channels == [8, 16, 16, 16, 8]
    assert teacher(x_t, lr, torch.tensor([0.5, 2.5])).shape == x_t.shape  # float timesteps too


def test_modulation_changes_output_and_identity_equals_none() -> None:
    teacher = _teacher()
    lr, x_t, t = torch.rand(1, 3, 32, 32), torch.randn(1, 3, 64, 64), torch.tensor([2])
    with torch.no_grad():
        plain = teacher(x_t, lr, t)
        torch.testing.assert_close(teacher(x_t, lr, t, _modulation(teacher, 2, gain=1.0)), plain)
        assert not torch.allclose(teacher(x_t, lr, t, _modulation(teacher, 2)), plain, atol=1e-3)


def test_bad_teacher_inputs_name_the_fix() -> None:
    teacher = _teacher()
    with pytest.raises(MetaSRError, match="2x the LR size"):
        teacher(torch.randn(1, 3, 64, 64), torch.rand(1, 3, 16, 16), torch.tensor([0]))
    with pytest.raises(MetaSRError, match="multiple of 2"):
        _teacher(scale=3)(torch.randn(1, 3, 33, 33), torch.rand(1, 3, 11, 11), torch.tensor([0]))
    with pytest.raises(MetaSRError, match="teacher.stage_channels"):
        teacher(torch.randn(1, 3, 64, 64), torch.rand(1, 3, 32, 32), torch.tensor([0]), _modulation(teacher, 1)[:2])
    with pytest.raises(MetaSRError, match="norm_groups"):
        TeacherConfig(base_channels=12, norm_groups=8)


def test_orchestrator_drives_the_teacher_and_receives_gradients() -> None:
    teacher = _teacher().train()
    orchestrator = Orchestrator({"edges": 3, "faces": 1}, teacher.stage_channels)
    lr = torch.rand(2, 3, 64, 32)
    metadata = [torch.rand(2, 3, 2, 1), torch.rand(2, 1, 2, 1)]
    decisions = orchestrator(lr, metadata)
    out = teacher(torch.randn(2, 3, 128, 64), lr, torch.tensor([1, 3]), decisions.modulation)
    assert out.shape == (2, 3, 128, 64)
    out.square().mean().backward()
    for head in orchestrator.film:
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


def test_default_teacher_meets_the_mac_budget() -> None:
    teacher = MetaSRTeacher()
    lr = torch.rand(1, 3, 8, 8)
    macs = count_macs(teacher, (torch.randn(1, 3, 16, 16), lr, torch.tensor([0])))
    per_pixel = macs / (16 * 16)
    assert per_pixel >= 350_000
    assert ResShiftSchedule().steps * per_pixel >= 1_400_000
    assert len(teacher.stage_channels) == 2 * len(teacher.config.channel_mult) + 1


# --- ResShift ------------------------------------------------------------------------------------------------


def test_schedule_runs_from_eta_min_to_eta_max() -> None:
    schedule = ResShiftSchedule(steps=4, kappa=1.0, eta_min=0.01, eta_max=0.99)
    etas = schedule.etas
    assert etas.shape == (4,)
    torch.testing.assert_close(etas[[0, -1]], torch.tensor([0.01, 0.99], dtype=torch.float64))
    assert (etas.diff() > 0).all()
    with pytest.raises(MetaSRError, match="at least 2 steps"):
        ResShiftSchedule(steps=1)
    with pytest.raises(MetaSRError, match="eta_min"):
        ResShiftSchedule(eta_min=0.5, eta_max=0.4)


def test_q_sample_at_the_last_step_is_y_plus_the_stated_noise() -> None:
    schedule = ResShiftSchedule()
    gen = torch.Generator().manual_seed(0)
    x0, y = torch.rand(4, 3, 64, 64, generator=gen), torch.rand(4, 3, 64, 64, generator=gen)
    last = torch.full((4,), schedule.steps - 1)
    eta_t = float(schedule.etas[-1])
    mean = schedule.q_sample(x0, y, last, torch.zeros_like(x0))
    assert (mean - y).abs().max() <= (1 - eta_t) + 1e-6  # x_T's mean is within (1 - eta_T) |x0 - y| of y
    noisy = schedule.q_sample(x0, y, last, torch.randn(x0.shape, generator=gen))
    assert abs((noisy - mean).std().item() - schedule.kappa * eta_t**0.5) < 0.01


def test_posterior_step_keeps_the_marginal() -> None:
    """Drawing x_{t-1} ~ q(x_{t-1} | x_t, x_0) from x_t ~ q(x_t | x_0) gives q(x_{t-1} | x_0)."""
    schedule = ResShiftSchedule()
    gen = torch.Generator().manual_seed(0)
    x0, y = torch.full((1, 1, 400, 500), 0.2), torch.full((1, 1, 400, 500), 0.7)
    t = torch.tensor([2])
    x_t = schedule.q_sample(x0, y, t, torch.randn(x0.shape, generator=gen))
    mean, std = schedule.posterior(x_t, x0, t)
    x_prev = mean + std * torch.randn(x0.shape, generator=gen)
    eta = float(schedule.etas[1])
    assert abs(x_prev.mean().item() - (0.2 + eta * 0.5)) < 0.01
    assert abs(x_prev.std().item() - schedule.kappa * eta**0.5) < 0.01


def test_sample_is_deterministic_under_a_seed_and_differs_across_seeds() -> None:
    teacher, schedule = _teacher(), ResShiftSchedule()
    lr = torch.rand(1, 3, 16, 16)
    y = bicubic_upscale(lr, 2)
    calls = []

    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(t[0].item())
        return teacher(x_t, lr, t)

    with torch.no_grad():
        first = schedule.sample(model_fn, y, torch.Generator().manual_seed(7))
        again = schedule.sample(model_fn, y, torch.Generator().manual_seed(7))
        other = schedule.sample(model_fn, y, torch.Generator().manual_seed(8))
    assert calls[:4] == [3, 2, 1, 0]
    assert first.shape == y.shape and first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def _patches() -> tuple[torch.Tensor, torch.Tensor]:
    """Four 64x64 HR patches from scikit-image photos and their 32x32 bicubic LR."""
    images = (data.astronaut(), data.chelsea(), data.coffee(), data.rocket())
    crops = [image[100:164, 120:184] for image in images]
    hr = torch.from_numpy(np.stack(crops).astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    return hr, bicubic_downscale(hr, 2)


def test_training_the_tiny_teacher_beats_bicubic() -> None:
    torch.manual_seed(0)
    teacher, schedule = MetaSRTeacher(TeacherConfig.tiny(2)), ResShiftSchedule()
    hr, lr = _patches()
    y = bicubic_upscale(lr, 2)

    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return teacher(x_t, lr, t)

    def evaluate() -> float:
        with torch.no_grad():
            return sum(
                schedule.training_loss(model_fn, hr, y, torch.Generator().manual_seed(s))[0].item() for s in range(4)
            )

    before = evaluate()
    torch.testing.assert_close(before, 4 * torch.nn.functional.mse_loss(y, hr).item())  # untrained = bicubic
    optimizer = torch.optim.Adam(teacher.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        loss, t = schedule.training_loss(model_fn, hr, y, gen)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert t.shape == (4,)
    assert evaluate() < 0.9 * before


# --- pretrained adapter ----------------------------------------------------------------------------------------


def _tiny_ldm_pipeline() -> LDMSuperResolutionPipeline:
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=32,
        in_channels=6,
        out_channels=3,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    vqvae = VQModel(
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 8, 16),
        latent_channels=3,
        num_vq_embeddings=32,
        norm_num_groups=4,
    )
    return LDMSuperResolutionPipeline(vqvae=vqvae, unet=unet, scheduler=DDIMScheduler())


@pytest.fixture(scope="module")
def ldm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ldm") / "ldm-sr"
    _tiny_ldm_pipeline().save_pretrained(folder, safe_serialization=True)
    return folder


def test_pretrained_adapter_upscales_deterministically(ldm_folder: Path) -> None:
    teacher = PretrainedDiffusionTeacher.from_pretrained(ldm_folder, steps=3)
    assert teacher.scale == 4
    lr = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    sr = teacher(lr, torch.Generator().manual_seed(1))
    assert sr.shape == (1, 3, 128, 128)
    assert sr.min() >= 0 and sr.max() <= 1
    assert torch.equal(sr, teacher(lr, torch.Generator().manual_seed(1)))
    assert not torch.equal(sr, teacher(lr, torch.Generator().manual_seed(2)))

    pipeline = LDMSuperResolutionPipeline.from_pretrained(ldm_folder, local_files_only=True, use_safetensors=True)
    pipeline.set_progress_bar_config(disable=True)
    reference = pipeline(
        2 * lr - 1, num_inference_steps=3, generator=torch.Generator().manual_seed(1), output_type="pt"
    ).images
    torch.testing.assert_close(sr, reference)

    odd = teacher(torch.rand(2, 3, 33, 31), torch.Generator().manual_seed(0))
    assert odd.shape == (2, 3, 132, 124)


def test_pretrained_adapter_refuses_bad_folders(ldm_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match="does not exist"):
        PretrainedDiffusionTeacher.from_pretrained(tmp_path / "missing")
    with pytest.raises(MetaSRError, match="not a diffusers pipeline folder"):
        PretrainedDiffusionTeacher.from_pretrained(tmp_path)

    no_vqvae = tmp_path / "no-vqvae"
    _tiny_ldm_pipeline().save_pretrained(no_vqvae, safe_serialization=True)
    for file in (no_vqvae / "vqvae").iterdir():
        file.unlink()
    with pytest.raises(MetaSRError, match="lacks the 'vqvae' component"):
        PretrainedDiffusionTeacher.from_pretrained(no_vqvae)

    pickled = tmp_path / "pickled"
    _tiny_ldm_pipeline().save_pretrained(pickled, safe_serialization=False)
    marker = tmp_path / "pwned"
    torch.save(PicklePayload(marker), pickled / "unet" / "diffusion_pytorch_model.bin")
    with pytest.raises(MetaSRError, match="convert them to safetensors"):
        PretrainedDiffusionTeacher.from_pretrained(pickled)
    assert not marker.exists()


def test_own_estimate_builds_low_noise_inputs_around_the_networks_x_T_prediction() -> None:
    schedule = ResShiftSchedule(steps=4, kappa=0.1)
    hr, lr = _patches()
    y = bicubic_upscale(lr, 2)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def model_fn(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append((x_t, t))
        return torch.full_like(x_t, 0.5)  # a network whose every x0 estimate is mid-grey

    gen = torch.Generator().manual_seed(3)
    loss, t = schedule.training_loss(model_fn, hr, y, gen, own_estimate=True)
    (x_first, t_first), (x_t, t_seen) = seen
    assert torch.equal(t_first, torch.full_like(t, 3)) and torch.equal(t_seen, t) and bool((t < 3).any())
    eta = schedule.etas[t].float().view(-1, 1, 1, 1)
    centre = torch.where((t < 3).view(-1, 1, 1, 1), torch.full_like(hr, 0.5), hr)
    noise = (x_t - centre - eta * (y - centre)) / (schedule.kappa * eta.sqrt())
    assert noise.abs().max() < 6.0 and 0.8 < noise.std() < 1.2  # x_t ~ q(x_t | centre, y)
    torch.testing.assert_close(loss, torch.nn.functional.mse_loss(torch.full_like(hr, 0.5), hr))
