"""VQAScore (Lin et al., ECCV 2024) with a local Hugging Face transformers VLM.

VQAScore(image, prompt) = P("Yes" | image, 'Does this figure show "{prompt}"? Please answer yes or no.'),
read from the next-token logits after the chat template's assistant turn and normalised over the two
answers: softmax([logit_Yes, logit_No])[0]. A video scores the mean over its sampled frames.

`LocalVLM.load(path)` reads a local directory only (`local_files_only=True`, safetensors only, no remote
code): the same code loads real weights (Qwen2.5-VL, SmolVLM, LLaVA, Idefics3, ...) and the tiny random
model the tests build. `LocalVLM.complete()` also answers OpenAI-style chat messages by greedy generation,
so the rubric and pairwise modes run on a local VLM too.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from evaluation.judges.media import decode_data_url, open_image
from evaluation.judges.openai_client import ChatResponse

MODE = "vqascore/v1"
QUESTION = 'Does this figure show "{prompt}"? Please answer yes or no.'


class VLMUnavailable(RuntimeError):
    """The local VLM is not configured or its directory cannot be loaded (message says how to fix)."""


def vqascore_question(prompt: str) -> str:
    return QUESTION.format(prompt=prompt.strip())


def yes_probability_from_logits(logit_yes: float, logit_no: float) -> float:
    """softmax([logit_yes, logit_no])[0], computed stably."""
    return 1.0 / (1.0 + math.exp(logit_no - logit_yes))


def yes_probability_from_top_logprobs(top: dict[str, float]) -> float:
    """P(yes) / (P(yes) + P(no)) from an API's first-token top log-probabilities.

    Tokenizers spell the answer differently (" Yes", "Yes", "yes"), so all casings and leading
    spaces of each answer are summed. Raises ValueError when neither answer is among them.
    """
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in top.items():
        word = re.sub(r"^[\sĠ▁]+", "", token).lower()
        if word in mass:
            mass[word] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    if total <= 0.0:
        raise ValueError(f"neither 'Yes' nor 'No' among the top tokens {sorted(top)[:20]}")
    return mass["yes"] / total


def weights_sha256(path: Path) -> str:
    """sha256 over the directory's *.safetensors files (name and content hash, sorted by name)."""
    outer = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")):
        inner = hashlib.sha256()
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                inner.update(block)
        outer.update(f"{file.name}:{inner.hexdigest()}\n".encode())
    return outer.hexdigest()


@dataclass(frozen=True)
class YesNo:
    """One VQAScore answer: P(Yes) normalised over {Yes, No}, and the two logits."""

    probability: float
    logit_yes: float
    logit_no: float
    prompt_tokens: int


class LocalVLM:
    """A local image-text-to-text model and its processor, on one device, in eval mode."""

    def __init__(self, *, model, processor, path: Path, device: str) -> None:
        self.model = model
        self.processor = processor
        self.path = path
        self.device = device
        tokenizer = processor.tokenizer
        self.yes_id = _first_token_id(tokenizer, "Yes")
        self.no_id = _first_token_id(tokenizer, "No")
        if self.yes_id == self.no_id:
            raise VLMUnavailable(f"the tokenizer in {path} maps 'Yes' and 'No' to the same token")
        self._weights_sha256: str | None = None

    @classmethod
    def load(cls, path: Path | str | None, *, device: str = "auto") -> LocalVLM:
        """Load processor and model from a local directory (config.json, *.safetensors, tokenizer)."""
        if path is None or str(path).strip() == "":
            raise VLMUnavailable(
                "no local VLM configured: set JUDGE_LOCAL_VLM_PATH to a directory holding a Hugging "
                "Face image-text-to-text model (config.json, *.safetensors, tokenizer, processor)"
            )
        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise VLMUnavailable(f"JUDGE_LOCAL_VLM_PATH={path}: no config.json in that directory")
        if not any(path.glob("*.safetensors")):
            raise VLMUnavailable(
                f"JUDGE_LOCAL_VLM_PATH={path}: no *.safetensors weights (pickled .bin weights are "
                "refused; convert them to safetensors)"
            )
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            model = AutoModelForImageTextToText.from_pretrained(
                path, local_files_only=True, use_safetensors=True, dtype=dtype
            )
        except (OSError, ValueError, KeyError) as exc:
            raise VLMUnavailable(
                f"JUDGE_LOCAL_VLM_PATH={path}: cannot load the VLM: {exc}"
            ) from exc
        model.to(device).eval()
        return cls(model=model, processor=processor, path=path, device=device)

    @property
    def weights_sha256(self) -> str:
        if self._weights_sha256 is None:
            self._weights_sha256 = weights_sha256(self.path)
        return self._weights_sha256

    def _inputs(self, conversation: list[dict], images: Sequence[Image.Image]):
        text = self.processor.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=False
        )
        inputs = self.processor(images=list(images) or None, text=[text], return_tensors="pt")
        return inputs.to(self.device)

    def yes_no(self, *, image: Image.Image, prompt: str) -> YesNo:
        """VQAScore of one image for one text prompt."""
        import torch

        conversation = [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "text", "text": vqascore_question(prompt)}],
            }
        ]
        inputs = self._inputs(conversation, [image])
        with torch.inference_mode():
            logits = self.model(**inputs).logits[0, -1].float()
        logit_yes, logit_no = float(logits[self.yes_id]), float(logits[self.no_id])
        return YesNo(
            probability=yes_probability_from_logits(logit_yes, logit_no),
            logit_yes=logit_yes,
            logit_no=logit_no,
            prompt_tokens=int(inputs["input_ids"].shape[1]),
        )

    def complete(
        self,
        messages: Sequence[dict],
        *,
        max_tokens: int | None = None,
        top_logprobs: int | None = None,
    ) -> ChatResponse:
        """Answer OpenAI-style chat messages (text parts, base64 image data URLs) greedily."""
        import torch

        conversation, images = [], []
        for message in messages:
            content = message["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}]
            parts = []
            for part in content:
                if part["type"] == "image_url":
                    images.append(open_image(decode_data_url(part["image_url"]["url"])))
                    parts.append({"type": "image"})
                else:
                    parts.append({"type": "text", "text": part["text"]})
            conversation.append({"role": message["role"], "content": parts})
        inputs = self._inputs(conversation, images)
        prompt_length = int(inputs["input_ids"].shape[1])
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, max_new_tokens=max_tokens or 512, do_sample=False
            )
        new_tokens = output[0, prompt_length:]
        text = self.processor.tokenizer.decode(new_tokens, skip_special_tokens=True)
        return ChatResponse(
            text=text, prompt_tokens=prompt_length, completion_tokens=int(new_tokens.shape[0])
        )


def _first_token_id(tokenizer, word: str) -> int:
    """The token a model emits first when it answers `word` (as VQAScore reads it)."""
    ids = tokenizer.encode(word, add_special_tokens=False)
    if not ids:
        raise VLMUnavailable(f"the VLM's tokenizer cannot encode {word!r}")
    return int(ids[0])
