"""A user's local pretrained latent-diffusion SR checkpoint (diffusers layout) used as the teacher.

The folder follows ``LDMSuperResolutionPipeline.save_pretrained``: ``model_index.json``, ``unet/`` (a
``UNet2DModel`` denoising ``cat(latents, lr)``, 6 input channels), ``vqvae/`` (a ``VQModel`` whose decoder
maps LR-sized latents to the HR image) and ``scheduler/``. Only safetensors weights are loaded, only from
disk; the denoising loop is the pipeline's, with every random draw taken from the caller's generator.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion_superresolution import LDMSuperResolutionPipeline
from diffusers.utils.torch_utils import randn_tensor

from metasr.errors import MetaSRError

COMPONENTS = {"unet": "config.json", "vqvae": "config.json", "scheduler": "scheduler_config.json"}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


class PretrainedDiffusionTeacher:
    """Super-resolves LR frames in [0, 1] with a pretrained LDM SR pipeline's components."""

    def __init__(self, pipeline: LDMSuperResolutionPipeline, steps: int) -> None:
        if steps < 1:
            raise MetaSRError(f"the pretrained teacher needs at least 1 sampling step, got {steps}; pass steps >= 1")
        self.unet = pipeline.unet
        self.vqvae = pipeline.vqvae
        self.scheduler = pipeline.scheduler
        self.steps = steps

    @classmethod
    def from_pretrained(
        cls, path: str | Path, steps: int = 50, device: str | torch.device = "cpu"
    ) -> PretrainedDiffusionTeacher:
        """Load the checkpoint folder at ``path`` (local only, safetensors only) onto ``device``."""
        path = Path(path)
        check_checkpoint_folder(path)
        pipeline = LDMSuperResolutionPipeline.from_pretrained(path, local_files_only=True, use_safetensors=True)
        if pipeline.unet.config.in_channels != 6:
            raise MetaSRError(
                f"{path}/unet takes {pipeline.unet.config.in_channels} channels, not cat(3 latent, 3 LR) = 6; "
                "use an LDM super-resolution checkpoint"
            )
        return cls(pipeline.to(device), steps)

    @property
    def scale(self) -> int:
        """Upscaling factor: the VQ decoder doubles the resolution at every level but the last."""
        return 2 ** (len(self.vqvae.config.block_out_channels) - 1)

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @torch.no_grad()
    def __call__(self, lr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Super-resolve ``lr`` (N, 3, h, w) in [0, 1] to (N, 3, h * scale, w * scale) in [0, 1].

        The LR frame is edge-padded to the UNet's size multiple and the result cropped back.
        """
        h, w = lr.shape[-2:]
        multiple = 2 ** (len(self.unet.config.block_out_channels) - 1)
        dtype = self.unet.dtype
        image = F.pad(lr, (0, -w % multiple, 0, -h % multiple), mode="replicate")
        image = (2.0 * image - 1.0).to(self.device, dtype)

        shape = (image.shape[0], self.unet.config.in_channels // 2, *image.shape[-2:])
        latents = randn_tensor(shape, generator=generator, device=self.device, dtype=dtype)
        latents = latents * self.scheduler.init_noise_sigma
        self.scheduler.set_timesteps(self.steps, device=self.device)
        step_kwargs = (
            {"generator": generator} if "generator" in inspect.signature(self.scheduler.step).parameters else {}
        )
        for t in self.scheduler.timesteps:
            model_input = self.scheduler.scale_model_input(torch.cat([latents, image], dim=1), t)
            noise_pred = self.unet(model_input, t).sample
            latents = self.scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample

        sr = self.vqvae.decode(latents).sample
        sr = (sr.clamp(-1.0, 1.0) + 1.0) / 2.0
        return sr[..., : h * self.scale, : w * self.scale]


def check_checkpoint_folder(path: Path) -> None:
    """Refuse anything but a local diffusers LDM SR folder with safetensors weights, naming the fix."""
    if not path.is_dir():
        raise MetaSRError(f"pretrained teacher folder {path} does not exist; pass a local diffusers checkpoint folder")
    index = path / "model_index.json"
    if not index.is_file():
        raise MetaSRError(
            f"{path} has no model_index.json, so it is not a diffusers pipeline folder; "
            "save the pipeline with save_pretrained()"
        )
    try:
        listed = json.loads(index.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MetaSRError(f"cannot read {index}: {exc}; re-save the pipeline with save_pretrained()") from exc
    for name, config in COMPONENTS.items():
        if name not in listed or not (path / name / config).is_file():
            raise MetaSRError(
                f"{path} lacks the {name!r} component of an LDM super-resolution pipeline "
                f"(model_index.json entry and {name}/{config}); use an LDMSuperResolutionPipeline checkpoint"
            )
    for name in ("unet", "vqvae"):
        folder = path / name
        if any(folder.glob("*.safetensors")):
            continue
        if any(f.suffix in PICKLE_SUFFIXES for f in folder.iterdir()):
            raise MetaSRError(
                f"{folder} holds only pickle weights, which are never loaded; convert them to safetensors "
                "with save_pretrained(..., safe_serialization=True) in a trusted environment"
            )
        raise MetaSRError(f"{folder} has no weights; add its diffusion_pytorch_model.safetensors")
